//! Malformed and forged requests, sent over raw TCP to a proxy in front of the embedded
//! backend. Each must get its S3 error code and status (or, for framing attacks the
//! HTTP layer refuses before any handler runs, a 4xx and a closed connection), none may
//! leave an object on the backend, and the proxy must keep serving afterwards.

use std::time::{Duration, SystemTime};

use base64::Engine;
use sha2::{Digest, Sha256};

mod raw;

use raw::*;

const BUCKET: &str = "badinput";
const TIME_FMT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

fn chunked_put(
    p: &Proxy,
    key: &str,
    data: &[u8],
    chunk: usize,
    mutate: impl FnOnce(&mut Vec<u8>, &mut Req),
) -> Req {
    chunked_put_with(p, key, data, chunk, true, mutate)
}

fn chunked_put_with(
    p: &Proxy,
    key: &str,
    data: &[u8],
    chunk: usize,
    decoded_length: bool,
    mutate: impl FnOnce(&mut Vec<u8>, &mut Req),
) -> Req {
    let host = p.addr.to_string();
    let now = SystemTime::now();
    let stamp = time::OffsetDateTime::from(now).format(TIME_FMT).unwrap();
    let date = &stamp[..8];
    let mut req =
        Req::new("PUT", &format!("/{BUCKET}/{key}"), b"").header("content-encoding", "aws-chunked");
    if decoded_length {
        req = req.header("x-amz-decoded-content-length", &data.len().to_string());
    }
    let mut req = sign_header(
        req,
        &host,
        &p.ak,
        &p.sk,
        now,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    );
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let mut prev = auth.rsplit("Signature=").next().unwrap().to_string();
    let key_bytes = signing_key(&p.sk, date);
    let scope = format!("{date}/us-east-1/s3/aws4_request");
    let mut body = Vec::new();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(b"");
    for piece in pieces {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{scope}\n{prev}\n{}\n{}",
            sha256_hex(b""),
            sha256_hex(piece)
        );
        let sig = hex::encode(hmac(&key_bytes, sts.as_bytes()));
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    mutate(&mut body, &mut req);
    req.body = body;
    req
}

/// A STREAMING-UNSIGNED-PAYLOAD-TRAILER upload with a CRC32 trailer.
fn trailer_put(p: &Proxy, key: &str, data: &[u8], trailer_value: &str) -> Req {
    let host = p.addr.to_string();
    let req = Req::new("PUT", &format!("/{BUCKET}/{key}"), b"")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &data.len().to_string())
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .header("x-amz-sdk-checksum-algorithm", "CRC32");
    let mut req = sign_header(
        req,
        &host,
        &p.ak,
        &p.sk,
        SystemTime::now(),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    );
    let mut body = format!("{:x}\r\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(
        format!("\r\n0\r\nx-amz-checksum-crc32:{trailer_value}\r\n\r\n").as_bytes(),
    );
    req.body = body;
    req
}

fn crc32_b64(data: &[u8]) -> String {
    let v = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, data) as u32;
    base64::engine::general_purpose::STANDARD.encode(v.to_be_bytes())
}

/// One table row: what to send and what must come back.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    key: String,
    status: u16,
    /// Accepted S3 codes; empty = the HTTP layer answers, no XML expected.
    codes: &'static [&'static str],
    half_close: bool,
}

#[test]
fn malformed_and_forged_requests_get_s3_errors_and_store_nothing() {
    let p = Proxy::start();
    let host = p.addr.to_string();
    let now = SystemTime::now();
    let (ak, sk) = (p.ak.clone(), p.sk.clone());
    // The bucket the cases write into.
    let mk = sign_header(
        Req::new("PUT", &format!("/{BUCKET}"), b""),
        &host,
        &ak,
        &sk,
        now,
        &sha256_hex(b""),
    );
    let a = send_raw(p.addr, &mk.raw(&host, true), false).unwrap();
    assert_eq!(a.status, 200, "create bucket: {}", a.body);

    let body = b"hello, bad input".to_vec();
    let good_hash = sha256_hex(&body);
    let put = |key: &str| Req::new("PUT", &format!("/{BUCKET}/{key}"), &body);
    let signed = |r: Req| sign_header(r, &host, &ak, &sk, now, &good_hash);
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &'static str,
                   key: &str,
                   req: Vec<u8>,
                   status: u16,
                   codes: &'static [&'static str]| {
        cases.push(Case {
            name,
            bytes: req,
            key: key.to_string(),
            status,
            codes,
            half_close: false,
        });
    };
    let min = Duration::from_secs(60);

    add(
        "no auth",
        "k01",
        put("k01")
            .header("x-amz-content-sha256", &good_hash)
            .raw(&host, true),
        403,
        &["AccessDenied"],
    );
    add(
        "unknown access key",
        "k02",
        sign_header(put("k02"), &host, "NOSUCHKEY", &sk, now, &good_hash).raw(&host, true),
        403,
        &["InvalidAccessKeyId"],
    );
    add(
        "wrong secret",
        "k03",
        sign_header(put("k03"), &host, &ak, "wrong-secret", now, &good_hash).raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "date 20 min ahead",
        "k04",
        sign_header(put("k04"), &host, &ak, &sk, now + 20 * min, &good_hash).raw(&host, true),
        403,
        &["RequestTimeTooSkewed"],
    );
    add(
        "date 20 min behind",
        "k05",
        sign_header(put("k05"), &host, &ak, &sk, now - 20 * min, &good_hash).raw(&host, true),
        403,
        &["RequestTimeTooSkewed"],
    );
    add(
        "expired presigned PUT",
        "k06",
        presign(
            put("k06"),
            &host,
            &ak,
            &sk,
            now - 10 * min,
            Duration::from_secs(60),
        )
        .raw(&host, true),
        403,
        &["AccessDenied"],
    );
    add(
        "presigned PUT from the future",
        "k07",
        presign(
            put("k07"),
            &host,
            &ak,
            &sk,
            now + 60 * min,
            Duration::from_secs(3600),
        )
        .raw(&host, true),
        403,
        &["AccessDenied", "RequestTimeTooSkewed"],
    );
    add(
        "presign expiry over 7 days",
        "k08",
        presign(
            put("k08"),
            &host,
            &ak,
            &sk,
            now,
            Duration::from_secs(604_801),
        )
        .raw(&host, true),
        400,
        &["AuthorizationQueryParametersError"],
    );
    add(
        "SSE-C key without its algorithm",
        "k50",
        signed(
            put("k50")
                .header(
                    "x-amz-server-side-encryption-customer-key",
                    "pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=",
                )
                .header(
                    "x-amz-server-side-encryption-customer-key-md5",
                    "DWygnHRtgiJ77HCm+1rvHw==",
                ),
        )
        .raw(&host, true),
        400,
        &["InvalidArgument"],
    );
    add(
        "payload hash does not match body",
        "k09",
        sign_header(put("k09"), &host, &ak, &sk, now, &sha256_hex(b"other")).raw(&host, true),
        400,
        &["XAmzContentSHA256Mismatch"],
    );
    add(
        "payload hash not hex",
        "k10",
        sign_header(put("k10"), &host, &ak, &sk, now, "zz").raw(&host, true),
        400,
        &[
            "InvalidArgument",
            "InvalidRequest",
            "XAmzContentSHA256Mismatch",
        ],
    );
    let md5 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b));
    add(
        "Content-MD5 mismatch",
        "k11",
        signed(put("k11").header("content-md5", &md5(b"other"))).raw(&host, true),
        400,
        &["BadDigest"],
    );
    add(
        "Content-MD5 malformed",
        "k12",
        signed(put("k12").header("content-md5", "not base64!")).raw(&host, true),
        400,
        &["InvalidDigest"],
    );
    add(
        "Content-MD5 wrong length",
        "k13",
        signed(put("k13").header("content-md5", "AAAA")).raw(&host, true),
        400,
        &["InvalidDigest"],
    );
    add(
        "CRC32 header mismatch",
        "k14",
        signed(put("k14").header("x-amz-checksum-crc32", &crc32_b64(b"other"))).raw(&host, true),
        400,
        &["BadDigest"],
    );
    add(
        "CRC32 header malformed",
        "k15",
        signed(put("k15").header("x-amz-checksum-crc32", "!!")).raw(&host, true),
        400,
        &["InvalidRequest", "InvalidArgument"],
    );
    add(
        "SHA256 checksum mismatch",
        "k16",
        signed(put("k16").header(
            "x-amz-checksum-sha256",
            &base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"x")),
        ))
        .raw(&host, true),
        400,
        &["BadDigest"],
    );
    // Signed elements mutated after signing.
    let mutate = |r: Req, f: &dyn Fn(&mut Req)| {
        let mut r = r;
        f(&mut r);
        r
    };
    add(
        "method changed after signing",
        "k17",
        mutate(signed(put("k17")), &|r| r.method = "POST".into()).raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "path changed after signing",
        "k18",
        mutate(signed(put("k18")), &|r| r.path = format!("/{BUCKET}/k18x")).raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "query added after signing",
        "k19",
        mutate(signed(put("k19")), &|r| r.path.push_str("?tagging")).raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "signed header changed",
        "k20",
        mutate(signed(put("k20").header("x-amz-meta-a", "1")), &|r| {
            for h in r.headers.iter_mut() {
                if h.0 == "x-amz-meta-a" {
                    h.1 = "2".into()
                }
            }
        })
        .raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "date changed after signing",
        "k21",
        mutate(signed(put("k21")), &|r| {
            for h in r.headers.iter_mut() {
                if h.0 == "x-amz-date" {
                    // Another last second digit: always a change, whatever the clock said.
                    let other = if h.1.ends_with("9Z") { '8' } else { '9' };
                    h.1 = format!("{}{other}Z", &h.1[..h.1.len() - 2])
                }
            }
        })
        .raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "body changed after signing",
        "k22",
        mutate(signed(put("k22")), &|r| r.body[0] ^= 1).raw(&host, true),
        400,
        &["XAmzContentSHA256Mismatch"],
    );
    add(
        "signature truncated",
        "k23",
        mutate(signed(put("k23")), &|r| {
            for h in r.headers.iter_mut() {
                if h.0 == "authorization" {
                    h.1.pop();
                }
            }
        })
        .raw(&host, true),
        400,
        &["AuthorizationHeaderMalformed"],
    );
    add(
        "garbage authorization",
        "k24",
        put("k24")
            .header("authorization", "AWS4-HMAC-SHA256 nonsense")
            .header("x-amz-date", "20200101T000000Z")
            .header("x-amz-content-sha256", &good_hash)
            .raw(&host, true),
        400,
        &[
            "AuthorizationHeaderMalformed",
            "InvalidArgument",
            "InvalidRequest",
        ],
    );
    add(
        "unsupported algorithm",
        "k25",
        put("k25")
            .header(
                "authorization",
                "AWS4-HMAC-SHA512 Credential=x/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            )
            .raw(&host, true),
        400,
        &[
            "AuthorizationHeaderMalformed",
            "InvalidArgument",
            "InvalidRequest",
            "AccessDenied",
        ],
    );
    add(
        "header and query auth together",
        "k26",
        {
            let r = presign(put("k26"), &host, &ak, &sk, now, Duration::from_secs(600));
            signed(r).raw(&host, true)
        },
        400,
        &["InvalidArgument", "InvalidRequest"],
    );
    add(
        "SigV2 wrong signature",
        "k27",
        put("k27")
            .header("date", &httpdate(now))
            .header(
                "authorization",
                &format!("AWS {ak}:AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            )
            .raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "SigV2 presign expired",
        "k28",
        Req::new(
            "GET",
            &format!("/{BUCKET}/k28?AWSAccessKeyId={ak}&Expires=1000&Signature=AAAA"),
            b"",
        )
        .raw(&host, true),
        403,
        &["AccessDenied"],
    );
    // aws-chunked framing.
    add(
        "chunk size not hex",
        "k29",
        chunked_put(&p, "k29", &body, 8, |b, _| {
            b[0] = b'z';
        })
        .raw(&host, true),
        400,
        &[
            "IncompleteBody",
            "InvalidRequest",
            "InvalidArgument",
            "InvalidChunkSizeError",
        ],
    );
    add(
        "chunk signature forged",
        "k30",
        chunked_put(&p, "k30", &body, 8, |b, _| {
            let i = b
                .windows(16)
                .position(|w| w == b"chunk-signature=")
                .unwrap()
                + 16;
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        })
        .raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "chunk data changed",
        "k31",
        chunked_put(&p, "k31", &body, 8, |b, _| {
            let i = b.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            b[i] ^= 1;
        })
        .raw(&host, true),
        403,
        &["SignatureDoesNotMatch"],
    );
    add(
        "final chunk missing",
        "k32",
        chunked_put(&p, "k32", &body, 8, |b, r| {
            let cut = b.len() - 87;
            b.truncate(cut);
            *r = r.clone().header("content-length", &cut.to_string());
        })
        .raw(&host, true),
        400,
        &["IncompleteBody"],
    );
    add(
        "decoded length larger than data",
        "k33",
        chunked_put(&p, "k33", &body, 8, |_, r| {
            *r = r.clone().header("x-amz-decoded-content-length", "999");
        })
        .raw(&host, true),
        403,
        &["SignatureDoesNotMatch", "IncompleteBody"],
    );
    add(
        "chunk header line too long",
        "k34",
        chunked_put(&p, "k34", &body, 8, |b, _| {
            let mut v = vec![b'0'; 20_000];
            v.extend_from_slice(b"8;chunk-signature=");
            b.splice(0..1, v);
        })
        .raw(&host, true),
        400,
        &[
            "IncompleteBody",
            "InvalidRequest",
            "InvalidArgument",
            "InvalidChunkSizeError",
        ],
    );
    add(
        "chunk larger than the limit",
        "k35",
        chunked_put(&p, "k35", &body, 8, |b, _| {
            b.splice(0..1, b"8000000".iter().copied());
        })
        .raw(&host, true),
        400,
        &[
            "IncompleteBody",
            "InvalidRequest",
            "InvalidArgument",
            "EntityTooLarge",
            "InvalidChunkSizeError",
        ],
    );
    add(
        "aws-chunked without decoded length",
        "k36",
        chunked_put_with(&p, "k36", &body, 8, false, |_, _| {}).raw(&host, true),
        411,
        &["MissingContentLength"],
    );
    add(
        "trailer checksum wrong",
        "k37",
        trailer_put(&p, "k37", &body, &crc32_b64(b"other")).raw(&host, true),
        400,
        &["BadDigest"],
    );
    add(
        "trailer checksum malformed",
        "k38",
        trailer_put(&p, "k38", &body, "###").raw(&host, true),
        400,
        &["InvalidRequest", "BadDigest", "InvalidArgument"],
    );
    // Bodies and framing.
    // hyper drops the Content-Length (RFC 9112 §6.3) and closes the connection after the
    // answer; what remains is a chunked PutObject, which S3 refuses with 411.
    add(
        "Content-Length with Transfer-Encoding",
        "k40",
        signed(put("k40"))
            .header("transfer-encoding", "chunked")
            .raw(&host, true),
        411,
        &["MissingContentLength"],
    );
    add(
        "two different Content-Length headers",
        "k41",
        {
            let mut raw = signed(put("k41")).raw(&host, true);
            let pos = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            raw.splice(pos..pos, b"\r\ncontent-length: 3".iter().copied());
            raw
        },
        400,
        &[],
    );
    add(
        "PUT without Content-Length",
        "k42",
        signed(put("k42"))
            .header("transfer-encoding", "chunked")
            .raw(&host, false),
        411,
        &["MissingContentLength"],
    );
    add(
        "oversized header section",
        "k43",
        signed(put("k43").header("x-amz-meta-big", &"a".repeat(32 * 1024))).raw(&host, true),
        431,
        &["RequestHeaderSectionTooLarge"],
    );
    add(
        "too many headers",
        "k44",
        {
            let mut r = put("k44");
            for i in 0..100 {
                r = r.header(&format!("x-amz-meta-h{i}"), "v");
            }
            signed(r).raw(&host, true)
        },
        431,
        &[],
    );
    add(
        "path traversal as bucket",
        "k45",
        signed(Req::new("PUT", "/../k45", &body)).raw(&host, true),
        400,
        &["InvalidBucketName", "InvalidURI"],
    );
    add(
        "key not valid UTF-8",
        "k46",
        signed(Req::new("PUT", &format!("/{BUCKET}/k46%FF"), &body)).raw(&host, true),
        400,
        &["InvalidURI"],
    );
    add(
        "key longer than 1024 bytes",
        "k47",
        signed(Req::new(
            "PUT",
            &format!("/{BUCKET}/k47{}", "x".repeat(1100)),
            &body,
        ))
        .raw(&host, true),
        400,
        &["KeyTooLongError"],
    );
    add(
        "unsupported transfer coding",
        "k48",
        signed(put("k48"))
            .header("transfer-encoding", "gzip")
            .raw(&host, false),
        400,
        &[],
    );
    add(
        "missing x-amz-content-sha256",
        "k49",
        {
            let mut r = signed(put("k49"));
            r.headers.retain(|(k, _)| k != "x-amz-content-sha256");
            r.raw(&host, true)
        },
        400,
        &[
            "InvalidRequest",
            "MissingSecurityHeader",
            "InvalidArgument",
            "SignatureDoesNotMatch",
        ],
    );

    cases.push(Case {
        name: "body shorter than Content-Length",
        key: "k39".into(),
        bytes: signed(put("k39"))
            .header("content-length", "100")
            .raw(&host, false),
        status: 400,
        codes: &["IncompleteBody", "RequestTimeout"],
        half_close: true,
    });
    assert!(cases.len() >= 45, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let answer = send_raw(p.addr, &c.bytes, c.half_close);
        let ok = match &answer {
            None => c.codes.is_empty(),
            Some(a) => {
                let code = code_of(&a.body);
                let status_ok =
                    a.status == c.status || (c.codes.is_empty() && (400..500).contains(&a.status));
                let code_ok =
                    c.codes.is_empty() || code.as_deref().is_some_and(|k| c.codes.contains(&k));
                status_ok && code_ok
            }
        };
        if !ok {
            failures.push(format!(
                "{}: expected {} {:?}, got {:?}",
                c.name,
                c.status,
                c.codes,
                answer.as_ref().map(|a| (a.status, code_of(&a.body)))
            ));
        }
        if p.object_exists(BUCKET, &c.key) {
            failures.push(format!("{}: object {} was stored", c.name, c.key));
        }
    }
    // Still serving: a correct request succeeds after all of that.
    let good = signed(put("after"));
    let a = send_raw(p.addr, &good.raw(&host, true), false).unwrap();
    assert_eq!(a.status, 200, "a good request after the table: {}", a.body);
    assert!(p.object_exists(BUCKET, "after"));
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn httpdate(t: SystemTime) -> String {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from(t).format(f).unwrap()
}
