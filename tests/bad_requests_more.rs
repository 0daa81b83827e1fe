//! The second half of the bad-input table (the first is `tests/bad_requests.rs`): XML
//! bombs, part numbers, ranges, hostile keys, duplicate query parameters, header
//! injection, framing and smuggling, bad hosts and request lines, sent over raw TCP to
//! a proxy on the embedded backend. Each case names the S3 error (or, for what the HTTP
//! layer refuses before any handler runs, a 4xx and/or a closed connection) it must
//! get; after each, nothing was stored, the proxy still serves, nothing hung, and no
//! task panicked anywhere in the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use md5::Digest;

mod raw;

use raw::*;

const BUCKET: &str = "badmore";
/// The object the range and read cases read: 100 bytes, byte i = i.
const OBJ: &str = "range-object";

/// What a case must get back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status and one of these S3 codes in an XML body.
    S3(u16, &'static [&'static str]),
    /// Refused by the HTTP layer: a 4xx/5xx (not 500) without S3 XML, or the
    /// connection closed without an answer.
    Http,
    /// Served: this status and, when given, exactly this many body bytes.
    Served(u16, Option<usize>),
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// A key that must not exist afterwards (None for reads).
    key: Option<String>,
    expect: Expect,
}

fn md5_b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b))
}

/// Replaces the first `from` in `raw` with `to` (for bytes a signer would not emit).
fn patch(mut raw: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    if let Some(i) = raw.windows(from.len()).position(|w| w == from) {
        raw.splice(i..i + from.len(), to.iter().copied());
    }
    raw
}

struct Env<'a> {
    p: &'a Proxy,
    host: String,
}

impl Env<'_> {
    fn signed(&self, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
        signed_request(self.p, method, path, body, headers)
    }
    fn signed_req(&self, req: Req) -> Req {
        let hash = sha256_hex(&req.body);
        sign_header(
            req,
            &self.host,
            &self.p.ak,
            &self.p.sk,
            SystemTime::now(),
            &hash,
        )
    }
    /// A signed POST with an XML body and its Content-MD5.
    fn xml_post(&self, path: &str, body: &[u8]) -> Vec<u8> {
        let md5 = md5_b64(body);
        self.signed("POST", path, body, &[("content-md5", &md5)])
    }
}

fn start_upload(e: &Env, key: &str) -> (String, String) {
    let r = request(
        e.p.addr,
        &e.signed("POST", &format!("/{BUCKET}/{key}?uploads"), b"", &[]),
    )
    .expect("create multipart upload answers");
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(r.status, 200, "create multipart upload: {body}");
    let start = body.find("<UploadId>").expect("upload id") + 10;
    let end = body.find("</UploadId>").expect("upload id end");
    let id = body[start..end].to_string();
    let part = request(
        e.p.addr,
        &e.signed(
            "PUT",
            &format!("/{BUCKET}/{key}?partNumber=1&uploadId={id}"),
            b"part one data",
            &[],
        ),
    )
    .expect("upload part answers");
    assert_eq!(part.status, 200, "upload part");
    let etag = part.header("etag").expect("part etag").to_string();
    (id, etag)
}

fn billion_laughs(root: &str, inner: &str) -> Vec<u8> {
    let mut x = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    let mut prev = "lol".to_string();
    for i in 1..10 {
        let name = format!("lol{i}");
        x.push_str(&format!(
            "<!ENTITY {name} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
        prev = name;
    }
    x.push_str(&format!(
        "]>\n<{root}>{}</{root}>",
        inner.replace("X", &format!("&{prev};"))
    ));
    x.into_bytes()
}

fn xxe(root: &str, inner: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<{root}>{}</{root}>",
        inner.replace("X", "&xxe;")
    )
    .into_bytes()
}

fn deep(root: &str, depth: usize) -> Vec<u8> {
    format!(
        "<{root}>{}{}</{root}>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    )
    .into_bytes()
}

/// 126 hostile requests, each with the S3 error it must get; after each, nothing was
/// stored, the proxy still serves the object it holds, and no task panicked. The cases
/// where the proxy holds clients to S3's rules although the embedded backend would not
/// (DeleteObjects limits and digest, ETags named at completion, NUL in keys, the Host
/// header, methods) are in this table too.
#[test]
fn hostile_requests_get_their_documented_errors() {
    // Count panics anywhere in the process (the proxy runs in-process).
    let panics = Arc::new(AtomicUsize::new(0));
    {
        let panics = panics.clone();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            prev(info);
        }));
    }
    let p = Proxy::start_with(|c| {
        c.limits.max_xml_body_bytes = 256 * 1024;
        c.limits.max_url_bytes = 8 * 1024;
    });
    let e = Env {
        p: &p,
        host: p.addr.to_string(),
    };
    let host = e.host.clone();
    let mk = request(p.addr, &e.signed("PUT", &format!("/{BUCKET}"), b"", &[])).unwrap();
    assert_eq!(mk.status, 200, "create bucket");
    let content: Vec<u8> = (0..100u8).collect();
    let put = request(
        p.addr,
        &e.signed("PUT", &format!("/{BUCKET}/{OBJ}"), &content, &[]),
    )
    .unwrap();
    assert_eq!(put.status, 200, "put the range object");
    let (upload, etag) = start_upload(&e, "mp-target");

    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, key: Option<&str>, bytes: Vec<u8>, expect: Expect| {
        cases.push(Case {
            name: name.to_string(),
            bytes,
            key: key.map(str::to_string),
            expect,
        });
    };
    const MALFORMED: Expect = Expect::S3(400, &["MalformedXML"]);
    const TOO_BIG: Expect = Expect::S3(400, &["MaxMessageLengthExceeded", "MalformedXML"]);

    // --- XML bombs and bad XML in DeleteObjects (key "victim" must survive: it never
    // exists, and the table checks nothing else appeared).
    let del = format!("/{BUCKET}?delete");
    let del_inner = "<Object><Key>X</Key></Object>";
    add(
        "delete: billion laughs",
        None,
        e.xml_post(&del, &billion_laughs("Delete", del_inner)),
        MALFORMED,
    );
    add(
        "delete: external entity",
        None,
        e.xml_post(&del, &xxe("Delete", del_inner)),
        MALFORMED,
    );
    add(
        "delete: 10,000 levels deep",
        None,
        e.xml_post(&del, &deep("Delete", 10_000)),
        MALFORMED,
    );
    add(
        "delete: 200 KB attribute",
        None,
        e.xml_post(
            &del,
            format!(
                "<Delete a=\"{}\"><Object><Key>{OBJ}</Key></Object><Quiet>true</Quiet></Delete>",
                "a".repeat(200_000)
            )
            .as_bytes(),
        ),
        MALFORMED,
    );
    add(
        "delete: body over max_xml_body_bytes",
        None,
        e.xml_post(&del, &[b' '; 300 * 1024]),
        TOO_BIG,
    );
    add(
        "delete: not XML",
        None,
        e.xml_post(&del, b"hello"),
        MALFORMED,
    );
    add("delete: empty body", None, e.xml_post(&del, b""), MALFORMED);
    add(
        "delete: truncated document",
        None,
        e.xml_post(&del, b"<Delete><Object><Key>a</Key></Obj"),
        MALFORMED,
    );
    add(
        "delete: wrong root element",
        None,
        e.xml_post(&del, b"<Remove><Object><Key>a</Key></Object></Remove>"),
        MALFORMED,
    );
    add(
        "delete: invalid UTF-8",
        None,
        e.xml_post(
            &del,
            b"<Delete><Object><Key>\xff\xfe</Key></Object></Delete>",
        ),
        MALFORMED,
    );
    add(
        "delete: 1,001 keys",
        None,
        e.xml_post(
            &del,
            {
                let mut x = String::from("<Delete>");
                for i in 0..1001 {
                    x.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
                }
                x.push_str("</Delete>");
                x
            }
            .as_bytes(),
        ),
        MALFORMED,
    );
    add(
        "delete: without Content-MD5",
        None,
        e.signed(
            "POST",
            &del,
            b"<Delete><Object><Key>x</Key></Object></Delete>",
            &[],
        ),
        Expect::S3(400, &["InvalidRequest", "MissingContentMD5"]),
    );

    // --- CompleteMultipartUpload: bombs, bad part numbers, bad part lists.
    let cmu = format!("/{BUCKET}/mp-target?uploadId={upload}");
    let part =
        |n: &str, tag: &str| format!("<Part><PartNumber>{n}</PartNumber><ETag>{tag}</ETag></Part>");
    let doc = |parts: &str| {
        format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>").into_bytes()
    };
    let t = Some("mp-target");
    let cmu_inner = "<Part><PartNumber>1</PartNumber><ETag>X</ETag></Part>".to_string();
    add(
        "complete: billion laughs",
        t,
        e.xml_post(&cmu, &billion_laughs("CompleteMultipartUpload", &cmu_inner)),
        MALFORMED,
    );
    add(
        "complete: external entity",
        t,
        e.xml_post(&cmu, &xxe("CompleteMultipartUpload", &cmu_inner)),
        MALFORMED,
    );
    add(
        "complete: 10,000 levels deep",
        t,
        e.xml_post(&cmu, &deep("CompleteMultipartUpload", 10_000)),
        MALFORMED,
    );
    add(
        "complete: 200 KB attribute",
        t,
        e.xml_post(
            &cmu,
            format!(
                "<CompleteMultipartUpload a=\"{}\">{}</CompleteMultipartUpload>",
                "a".repeat(200_000),
                part("1", &etag)
            )
            .as_bytes(),
        ),
        MALFORMED,
    );
    add(
        "complete: body over max_xml_body_bytes",
        t,
        e.xml_post(&cmu, &[b' '; 300 * 1024]),
        TOO_BIG,
    );
    add(
        "complete: not XML",
        t,
        e.xml_post(&cmu, b"{\"parts\": []}"),
        MALFORMED,
    );
    add(
        "complete: empty part list",
        t,
        e.xml_post(&cmu, &doc("")),
        MALFORMED,
    );
    add(
        "complete: part number 0",
        t,
        e.xml_post(&cmu, &doc(&part("0", &etag))),
        Expect::S3(400, &["InvalidArgument", "InvalidPart", "MalformedXML"]),
    );
    add(
        "complete: part number -1",
        t,
        e.xml_post(&cmu, &doc(&part("-1", &etag))),
        Expect::S3(400, &["InvalidArgument", "InvalidPart", "MalformedXML"]),
    );
    add(
        "complete: part number 10,001",
        t,
        e.xml_post(&cmu, &doc(&part("10001", &etag))),
        Expect::S3(400, &["InvalidArgument", "InvalidPart", "MalformedXML"]),
    );
    add(
        "complete: part number overflowing u64",
        t,
        e.xml_post(&cmu, &doc(&part("99999999999999999999999", &etag))),
        Expect::S3(400, &["InvalidArgument", "InvalidPart", "MalformedXML"]),
    );
    add(
        "complete: part number not a number",
        t,
        e.xml_post(&cmu, &doc(&part("one", &etag))),
        Expect::S3(400, &["InvalidArgument", "InvalidPart", "MalformedXML"]),
    );
    add(
        "complete: unknown part",
        t,
        e.xml_post(&cmu, &doc(&part("2", &etag))),
        Expect::S3(400, &["InvalidPart"]),
    );
    // The embedded backend lists part ETags and checks them at completion, like S3;
    // the proxy compares them with the listing before completing.
    add(
        "complete: another ETag than the part's",
        t,
        e.xml_post(
            &cmu,
            &doc(&part("1", "\"0123456789abcdef0123456789abcdef\"")),
        ),
        Expect::S3(400, &["InvalidPart"]),
    );
    add(
        "complete: parts out of order",
        t,
        e.xml_post(
            &cmu,
            &doc(&format!("{}{}", part("2", &etag), part("1", &etag))),
        ),
        Expect::S3(400, &["InvalidPartOrder", "InvalidPart"]),
    );
    add(
        "complete: duplicate part numbers",
        t,
        e.xml_post(
            &cmu,
            &doc(&format!("{}{}", part("1", &etag), part("1", &etag))),
        ),
        Expect::S3(400, &["InvalidPartOrder", "InvalidPart"]),
    );
    add(
        "complete: unknown upload id",
        Some("mp-other"),
        e.xml_post(
            &format!("/{BUCKET}/mp-other?uploadId=nosuchupload"),
            &doc(&part("1", &etag)),
        ),
        Expect::S3(404, &["NoSuchUpload"]),
    );

    // --- UploadPart with bad part numbers and upload ids (S3: 400 InvalidArgument).
    let bad_part = Expect::S3(400, &["InvalidArgument"]);
    for (name, n) in [
        ("upload part: number 0", "0"),
        ("upload part: number -1", "-1"),
        ("upload part: number 10,001", "10001"),
        ("upload part: number 2^64", "18446744073709551616"),
        ("upload part: number not a number", "abc"),
        ("upload part: number empty", ""),
        ("upload part: number with sign", "+1"),
    ] {
        add(
            name,
            t,
            e.signed(
                "PUT",
                &format!("/{BUCKET}/mp-target?partNumber={n}&uploadId={upload}"),
                b"data",
                &[],
            ),
            bad_part,
        );
    }
    add(
        "upload part: unknown upload id",
        Some("mp-other"),
        e.signed(
            "PUT",
            &format!("/{BUCKET}/mp-other?partNumber=1&uploadId=nosuchupload"),
            b"data",
            &[],
        ),
        Expect::S3(404, &["NoSuchUpload"]),
    );

    // --- Duplicate query parameters.
    add(
        "duplicate partNumber",
        t,
        e.signed(
            "PUT",
            &format!("/{BUCKET}/mp-target?partNumber=1&partNumber=2&uploadId={upload}"),
            b"data",
            &[],
        ),
        Expect::S3(400, &["InvalidArgument", "InvalidRequest"]),
    );
    add(
        "duplicate uploadId",
        t,
        e.signed(
            "PUT",
            &format!("/{BUCKET}/mp-target?partNumber=1&uploadId={upload}&uploadId=other"),
            b"data",
            &[],
        ),
        Expect::S3(400, &["InvalidArgument", "InvalidRequest"]),
    );
    add(
        "duplicate X-Amz-Signature in a presigned URL",
        Some("dup-sig"),
        {
            let r = presign(
                Req::new("PUT", &format!("/{BUCKET}/dup-sig"), b"x"),
                &host,
                &p.ak,
                &p.sk,
                SystemTime::now(),
                Duration::from_secs(600),
            );
            let sig = r
                .path
                .rsplit("X-Amz-Signature=")
                .next()
                .unwrap_or("")
                .to_string();
            Req {
                path: format!("{}&X-Amz-Signature={sig}", r.path),
                ..r
            }
            .raw(&host, true)
        },
        Expect::S3(
            400,
            &["AuthorizationQueryParametersError", "InvalidArgument"],
        ),
    );
    add(
        "duplicate X-Amz-Credential in a presigned URL",
        Some("dup-cred"),
        {
            let r = presign(
                Req::new("PUT", &format!("/{BUCKET}/dup-cred"), b"x"),
                &host,
                &p.ak,
                &p.sk,
                SystemTime::now(),
                Duration::from_secs(600),
            );
            Req {
                path: format!(
                    "{}&X-Amz-Credential=x%2F20200101%2Fus-east-1%2Fs3%2Faws4_request",
                    r.path
                ),
                ..r
            }
            .raw(&host, true)
        },
        Expect::S3(
            400,
            &["AuthorizationQueryParametersError", "InvalidArgument"],
        ),
    );

    // --- Ranges (S3: a syntactically invalid or multi-range header serves the whole
    // object with 200; a start past the end is 416 InvalidRange).
    let get = |range: &str| {
        let mut r = Req::new("GET", &format!("/{BUCKET}/{OBJ}"), b"");
        r = r.header("range", range);
        e.signed_req(r).raw(&host, true)
    };
    let whole = Expect::Served(200, Some(100));
    let unsat = Expect::S3(416, &["InvalidRange"]);
    for (name, range, expect) in [
        ("range: multi-range", "bytes=0-1,3-4", whole),
        ("range: multi-range with spaces", "bytes=1-2, 4-5", whole),
        ("range: reversed", "bytes=5-2", whole),
        ("range: negative start", "bytes=-5-3", whole),
        ("range: not a number", "bytes=abc", whole),
        ("range: empty spec", "bytes=", whole),
        ("range: other unit", "items=0-1", whole),
        ("range: hex numbers", "bytes=0x0-0x10", whole),
        ("range: suffix zero", "bytes=-0", unsat),
        ("range: start past the end", "bytes=200-", unsat),
        ("range: start at the end", "bytes=100-150", unsat),
        (
            "range: start overflowing u64",
            "bytes=18446744073709551616-",
            unsat,
        ),
        (
            "range: end overflowing u64",
            "bytes=0-18446744073709551616",
            Expect::Served(206, Some(100)),
        ),
        (
            "range: suffix longer than the object",
            "bytes=-1000",
            Expect::Served(206, Some(100)),
        ),
        (
            "range: first byte",
            "bytes=0-0",
            Expect::Served(206, Some(1)),
        ),
        (
            "range: last byte",
            "bytes=99-",
            Expect::Served(206, Some(1)),
        ),
        (
            "range: twenty-digit suffix",
            "bytes=-99999999999999999999",
            Expect::Served(206, Some(100)),
        ),
    ] {
        add(name, None, get(range), expect);
    }

    // --- Hostile keys: invalid UTF-8, traversal, NUL, overlong encodings.
    let body = b"hostile key".to_vec();
    let put_path = |path: &str| e.signed("PUT", path, &body, &[]);
    let invalid_uri = Expect::S3(400, &["InvalidURI"]);
    add(
        "key: %-encoded invalid UTF-8",
        Some("k\u{fffd}"),
        put_path(&format!("/{BUCKET}/k%C3%28")),
        invalid_uri,
    );
    add(
        "key: overlong UTF-8 slash",
        Some("a"),
        put_path(&format!("/{BUCKET}/a%C0%AFb")),
        invalid_uri,
    );
    add(
        "key: UTF-16 surrogate",
        Some("s"),
        put_path(&format!("/{BUCKET}/s%ED%A0%80")),
        invalid_uri,
    );
    add(
        "key: raw invalid UTF-8 in the request line",
        Some("raw"),
        patch(put_path(&format!("/{BUCKET}/rawQQ")), b"QQ", b"\xff\xfe"),
        Expect::Http,
    );
    add(
        "key: raw space in the request line",
        Some("sp"),
        patch(put_path(&format!("/{BUCKET}/spQQx")), b"QQ", b" "),
        Expect::Http,
    );
    let traversal = Expect::S3(
        400,
        &[
            "InvalidArgument",
            "InvalidURI",
            "InvalidRequest",
            "InvalidBucketName",
        ],
    );
    add(
        "key: ../ traversal",
        Some("passwd"),
        put_path(&format!("/{BUCKET}/../../../../tmp/passwd")),
        traversal,
    );
    add(
        "key: %2e%2e traversal",
        Some("passwd2"),
        put_path(&format!("/{BUCKET}/%2e%2e/%2e%2e/passwd2")),
        traversal,
    );
    add(
        "key: %2F-encoded traversal",
        Some("passwd3"),
        put_path(&format!("/{BUCKET}/..%2F..%2Fpasswd3")),
        traversal,
    );
    add(
        "key: NUL byte",
        Some("nul"),
        put_path(&format!("/{BUCKET}/nul%00x")),
        traversal,
    );
    add(
        "key: longer than 1024 bytes when decoded",
        Some("long"),
        put_path(&format!("/{BUCKET}/long{}", "%41".repeat(1100))),
        Expect::S3(400, &["KeyTooLongError"]),
    );
    add(
        "URL longer than max_url_bytes",
        Some("url"),
        put_path(&format!("/{BUCKET}/url?x={}", "a".repeat(9000))),
        Expect::S3(414, &["UriTooLong"]),
    );

    // --- Bucket names.
    // `/../k` is a dot segment, which the request gate refuses as InvalidURI first.
    let bad_bucket = Expect::S3(400, &["InvalidBucketName", "InvalidURI"]);
    for (name, b) in [
        ("bucket: upper case", "BadMore"),
        ("bucket: two characters", "ab"),
        ("bucket: 64 characters", &*"b".repeat(64)),
        ("bucket: leading dash", "-badmore"),
        ("bucket: underscore", "bad_more"),
        ("bucket: ..", ".."),
    ] {
        add(name, None, put_path(&format!("/{b}/k")), bad_bucket);
    }

    // --- Header injection and malformed headers (the HTTP layer refuses them).
    let base = |key: &str| {
        e.signed(
            "PUT",
            &format!("/{BUCKET}/{key}"),
            &body,
            &[("x-amz-meta-a", "SLOT")],
        )
    };
    add(
        "header: bare CR in a value",
        Some("h1"),
        patch(base("h1"), b"SLOT", b"a\rb"),
        Expect::Http,
    );
    add(
        "header: CRLF injects a second header",
        Some("h2"),
        patch(base("h2"), b"SLOT", b"a\r\nx-amz-meta-injected: 1"),
        Expect::S3(403, &["SignatureDoesNotMatch", "AccessDenied"]),
    );
    add(
        "header: NUL in a value",
        Some("h3"),
        patch(base("h3"), b"SLOT", b"a\0b"),
        Expect::Http,
    );
    add(
        "header: obsolete line folding",
        Some("h4"),
        patch(base("h4"), b"SLOT", b"a\r\n folded"),
        Expect::Http,
    );
    add(
        "header: space before the colon",
        Some("h5"),
        patch(base("h5"), b"x-amz-meta-a:", b"x-amz-meta-a :"),
        Expect::Http,
    );
    add(
        "header: no colon",
        Some("h6"),
        patch(base("h6"), b"x-amz-meta-a:", b"x-amz-meta-a"),
        Expect::Http,
    );
    add(
        "header: one value of 20 KB",
        Some("h7"),
        patch(base("h7"), b"SLOT", "v".repeat(20_000).as_bytes()),
        Expect::S3(431, &["RequestHeaderSectionTooLarge"]),
    );
    add(
        // Past what hyper reads of a head (the 128 KiB buffer, and up to one more read
        // beyond it): refused by hyper before the gate.
        "header: one value of 300 KB",
        Some("h7b"),
        patch(base("h7b"), b"SLOT", "v".repeat(300_000).as_bytes()),
        Expect::Http,
    );
    add(
        "header: two Authorization headers",
        Some("h8"),
        {
            let raw = base("h8");
            let line_start = raw
                .windows(15)
                .position(|w| w.eq_ignore_ascii_case(b"authorization: "))
                .unwrap_or(0);
            let line_end = raw[line_start..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(raw.len(), |i| line_start + i + 2);
            let line = raw[line_start..line_end].to_vec();
            let mut out = raw.clone();
            out.splice(line_end..line_end, line);
            out
        },
        Expect::S3(
            400,
            &[
                "InvalidArgument",
                "InvalidRequest",
                "AuthorizationHeaderMalformed",
            ],
        ),
    );
    add(
        "header: non-ASCII metadata value",
        Some("h9"),
        patch(base("h9"), b"SLOT", "caf\u{e9}".as_bytes()),
        Expect::S3(403, &["SignatureDoesNotMatch", "AccessDenied"]),
    );

    // --- Content-Length and Transfer-Encoding smuggling.
    let cl = |key: &str, from: &[u8], to: &[u8]| {
        let raw = e.signed("PUT", &format!("/{BUCKET}/{key}"), &body, &[]);
        let len = format!("content-length: {}", body.len());
        patch(
            patch(raw, len.as_bytes(), b"SLOTCL"),
            b"SLOTCL",
            &[from, to].concat(),
        )
    };
    add(
        "Content-Length: negative",
        Some("c1"),
        cl("c1", b"content-length: ", b"-11"),
        Expect::Http,
    );
    add(
        "Content-Length: with a plus sign",
        Some("c2"),
        cl("c2", b"content-length: ", b"+11"),
        Expect::Http,
    );
    add(
        "Content-Length: hex",
        Some("c3"),
        cl("c3", b"content-length: ", b"0xb"),
        Expect::Http,
    );
    add(
        "Content-Length: overflowing u64",
        Some("c4"),
        cl("c4", b"content-length: ", b"99999999999999999999999"),
        Expect::Http,
    );
    add(
        "Content-Length: list of two values",
        Some("c5"),
        cl("c5", b"content-length: ", b"11, 12"),
        Expect::Http,
    );
    // RFC 9112 §6.3 lets a recipient fold equal lengths into one (hyper does); the
    // framing is unambiguous and the proxy re-frames the body for the backend.
    add(
        "Content-Length twice, same value",
        None,
        cl("c6", b"content-length: 11\r\ncontent-length: ", b"11"),
        Expect::Served(200, Some(0)),
    );
    add(
        "Transfer-Encoding: chunked, chunked",
        Some("c7"),
        e.signed_req(
            Req::new("PUT", &format!("/{BUCKET}/c7"), b"")
                .header("transfer-encoding", "chunked, chunked"),
        )
        .raw(&host, false),
        Expect::S3(411, &["MissingContentLength"]),
    );
    add(
        "Transfer-Encoding: chunked with a bad chunk size",
        None,
        {
            let mut r = e
                .signed_req(Req::new("POST", &del, b"").header("transfer-encoding", "chunked"))
                .raw(&host, false);
            r.extend_from_slice(b"zz\r\nabc\r\n0\r\n\r\n");
            r
        },
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "Transfer-Encoding: chunked with an overflowing size",
        None,
        {
            let mut r = e
                .signed_req(Req::new("POST", &del, b"").header("transfer-encoding", "chunked"))
                .raw(&host, false);
            r.extend_from_slice(b"ffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n");
            r
        },
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "Transfer-Encoding and Content-Length on a GET",
        None,
        {
            let mut r = e
                .signed_req(
                    Req::new("GET", &format!("/{BUCKET}/{OBJ}"), b"")
                        .header("transfer-encoding", "chunked"),
                )
                .raw(&host, false);
            r = patch(
                r,
                b"connection: close",
                b"content-length: 5\r\nconnection: close",
            );
            r.extend_from_slice(b"0\r\n\r\n");
            r
        },
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "Transfer-Encoding: identity",
        Some("c8"),
        e.signed_req(
            Req::new("PUT", &format!("/{BUCKET}/c8"), &body)
                .header("transfer-encoding", "identity"),
        )
        .raw(&host, false),
        Expect::Http,
    );

    // --- Hosts, request lines, HTTP versions, methods.
    let get_line = |line: &str, headers: &str| {
        format!("{line}\r\n{headers}connection: close\r\n\r\n").into_bytes()
    };
    add(
        "no Host header",
        None,
        get_line(&format!("GET /{BUCKET}/{OBJ} HTTP/1.1"), ""),
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "two Host headers",
        None,
        get_line(
            &format!("GET /{BUCKET}/{OBJ} HTTP/1.1"),
            &format!("host: {host}\r\nhost: evil.example\r\n"),
        ),
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "Host with a space",
        None,
        get_line(&format!("GET /{BUCKET}/{OBJ} HTTP/1.1"), "host: a b\r\n"),
        Expect::S3(400, &["InvalidRequest"]),
    );
    add(
        "HTTP/1.0 without Host, unsigned",
        None,
        get_line(&format!("GET /{BUCKET}/{OBJ} HTTP/1.0"), ""),
        Expect::S3(403, &["AccessDenied"]),
    );
    add(
        "absolute-form URI to another host",
        None,
        get_line(
            &format!("GET http://evil.example/{BUCKET}/{OBJ} HTTP/1.1"),
            &format!("host: {host}\r\n"),
        ),
        Expect::S3(403, &["AccessDenied"]),
    );
    add(
        "signed request replayed in absolute form",
        None,
        patch(
            e.signed("GET", &format!("/{BUCKET}/{OBJ}"), b"", &[]),
            b"GET /",
            format!("GET http://{host}/").as_bytes(),
        ),
        Expect::Served(200, Some(100)),
    );
    add(
        "HTTP/2.0 request line",
        None,
        get_line(
            &format!("GET /{BUCKET}/{OBJ} HTTP/2.0"),
            &format!("host: {host}\r\n"),
        ),
        Expect::Http,
    );
    add(
        "HTTP/1.1x request line",
        None,
        get_line(
            &format!("GET /{BUCKET}/{OBJ} HTTP/1.1x"),
            &format!("host: {host}\r\n"),
        ),
        Expect::Http,
    );
    add(
        "request line without version",
        None,
        get_line(
            &format!("GET /{BUCKET}/{OBJ}"),
            &format!("host: {host}\r\n"),
        ),
        Expect::Http,
    );
    add(
        "TLS ClientHello on the plain port",
        None,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
        Expect::Http,
    );
    add("binary garbage", None, (0..=255u8).collect(), Expect::Http);
    add(
        "empty line then EOF",
        None,
        b"\r\n\r\n".to_vec(),
        Expect::Http,
    );
    add(
        "unknown method",
        None,
        e.signed("FROB", &format!("/{BUCKET}/{OBJ}"), b"", &[]),
        Expect::S3(501, &["NotImplemented"]),
    );
    add(
        "TRACE",
        None,
        e.signed("TRACE", &format!("/{BUCKET}/{OBJ}"), b"", &[]),
        Expect::S3(405, &["MethodNotAllowed"]),
    );
    add(
        "CONNECT",
        None,
        get_line(
            &format!("CONNECT {host} HTTP/1.1"),
            &format!("host: {host}\r\n"),
        ),
        Expect::S3(405, &["MethodNotAllowed"]),
    );
    add(
        "method of 1,000 letters",
        None,
        get_line(
            &format!("{} /{BUCKET}/{OBJ} HTTP/1.1", "G".repeat(1000)),
            &format!("host: {host}\r\n"),
        ),
        Expect::S3(501, &["NotImplemented"]),
    );

    // --- Authentication oddities.
    let auth_put = |key: &str, f: &dyn Fn(&mut Req)| {
        let mut r = e.signed_req(Req::new("PUT", &format!("/{BUCKET}/{key}"), &body));
        f(&mut r);
        r.raw(&host, true)
    };
    let set = |r: &mut Req, k: &str, v: String| {
        for h in r.headers.iter_mut() {
            if h.0.eq_ignore_ascii_case(k) {
                h.1 = v.clone();
            }
        }
    };
    add(
        "auth: x-amz-date not a date",
        Some("a1"),
        auth_put("a1", &|r| set(r, "x-amz-date", "yesterday".into())),
        Expect::S3(403, &["AccessDenied", "SignatureDoesNotMatch"]),
    );
    add(
        "auth: scope for another service",
        Some("a2"),
        auth_put("a2", &|r| {
            let v = r
                .headers
                .iter()
                .find(|h| h.0 == "authorization")
                .map(|h| h.1.replace("/s3/", "/ec2/"))
                .unwrap_or_default();
            set(r, "authorization", v)
        }),
        Expect::S3(
            400,
            &["AuthorizationHeaderMalformed", "SignatureDoesNotMatch"],
        ),
    );
    add(
        "auth: scope for another region",
        Some("a3"),
        auth_put("a3", &|r| {
            let v = r
                .headers
                .iter()
                .find(|h| h.0 == "authorization")
                .map(|h| h.1.replace("/us-east-1/", "/mars-north-1/"))
                .unwrap_or_default();
            set(r, "authorization", v)
        }),
        // Any region is accepted (the scope's region feeds the key derivation), so a
        // scope changed after signing no longer matches the signature.
        Expect::S3(403, &["SignatureDoesNotMatch"]),
    );
    add(
        "auth: host not among the signed headers",
        Some("a4"),
        auth_put("a4", &|r| {
            let v = r
                .headers
                .iter()
                .find(|h| h.0 == "authorization")
                .map(|h| h.1.replace("SignedHeaders=host;", "SignedHeaders="))
                .unwrap_or_default();
            set(r, "authorization", v)
        }),
        // SigV4 requires the host to be signed: a malformed header, before any hashing.
        Expect::S3(
            400,
            &[
                "AuthorizationHeaderMalformed",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ],
        ),
    );
    let presigned = |key: &str, extra: &str| {
        let r = presign(
            Req::new("GET", &format!("/{BUCKET}/{key}"), b""),
            &host,
            &p.ak,
            &p.sk,
            SystemTime::now(),
            Duration::from_secs(600),
        );
        let path = r.path.replace("X-Amz-Expires=600", extra);
        Req { path, ..r }.raw(&host, true)
    };
    let qerr = Expect::S3(400, &["AuthorizationQueryParametersError"]);
    add(
        "presign: X-Amz-Expires negative",
        None,
        presigned(OBJ, "X-Amz-Expires=-1"),
        qerr,
    );
    add(
        "presign: X-Amz-Expires not a number",
        None,
        presigned(OBJ, "X-Amz-Expires=soon"),
        qerr,
    );
    add(
        "presign: X-Amz-Expires overflowing",
        None,
        presigned(OBJ, "X-Amz-Expires=99999999999999999999999"),
        qerr,
    );
    add(
        "presign: X-Amz-Expires missing",
        None,
        presigned(OBJ, "X-Amz-Nothing=1"),
        qerr,
    );

    // --- aws-chunked framing, unsigned trailer uploads.
    let trailer_put = |key: &str, framed: &[u8]| {
        let r = Req::new("PUT", &format!("/{BUCKET}/{key}"), b"")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", &body.len().to_string());
        let mut r = sign_header(
            r,
            &host,
            &p.ak,
            &p.sk,
            SystemTime::now(),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        );
        r.body = framed.to_vec();
        r.raw(&host, true)
    };
    let chunk_err = Expect::S3(
        400,
        &["IncompleteBody", "InvalidRequest", "InvalidArgument"],
    );
    let framed = |size: &str, rest: &str| {
        let mut v = format!("{size}\r\n").into_bytes();
        v.extend_from_slice(&body);
        v.extend_from_slice(rest.as_bytes());
        v
    };
    add(
        "aws-chunked: negative size",
        Some("t1"),
        trailer_put("t1", &framed("-b", "\r\n0\r\n\r\n")),
        chunk_err,
    );
    add(
        "aws-chunked: size overflowing u64",
        Some("t2"),
        trailer_put("t2", &framed("fffffffffffffffffffff", "\r\n0\r\n\r\n")),
        Expect::S3(
            400,
            &[
                "IncompleteBody",
                "InvalidRequest",
                "InvalidArgument",
                "EntityTooLarge",
            ],
        ),
    );
    add(
        "aws-chunked: size too small",
        Some("t3"),
        trailer_put("t3", &framed("2", "\r\n0\r\n\r\n")),
        chunk_err,
    );
    add(
        "aws-chunked: missing CRLF after data",
        Some("t4"),
        trailer_put("t4", &framed("b", "0\r\n\r\n")),
        chunk_err,
    );
    add(
        "aws-chunked: data after the final chunk",
        Some("t5"),
        trailer_put("t5", &framed("b", "\r\n0\r\n\r\nextra")),
        chunk_err,
    );
    add(
        "aws-chunked: unannounced trailer",
        Some("t6"),
        trailer_put(
            "t6",
            &framed("b", "\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"),
        ),
        chunk_err,
    );
    add(
        "aws-chunked: no final chunk",
        Some("t7"),
        trailer_put("t7", &framed("b", "\r\n")),
        chunk_err,
    );

    assert!(cases.len() >= 80, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    let health = e.signed("GET", &format!("/{BUCKET}/{OBJ}"), b"", &[]);
    for c in &cases {
        let started = Instant::now();
        let answer = request(p.addr, &c.bytes);
        let took = started.elapsed();
        slowest = slowest.max(took);
        let got = answer.as_ref().map(|a| {
            let text = String::from_utf8_lossy(&a.body).to_string();
            (a.status, code_of(&text), a.body.len())
        });
        let ok = match (c.expect, &got) {
            (Expect::S3(status, codes), Some((s, code, _))) => {
                *s == status && code.as_deref().is_some_and(|k| codes.contains(&k))
            }
            (Expect::S3(..), None) => false,
            (Expect::Http, None) => true,
            (Expect::Http, Some((s, code, _))) => {
                (400..600).contains(s) && *s != 500 && code.is_none()
            }
            (Expect::Served(status, len), Some((s, _, n))) => {
                *s == status && len.is_none_or(|l| l == *n)
            }
            (Expect::Served(..), None) => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name,
                c.expect,
                got.as_ref().map(|(s, k, n)| (s, k, n))
            ));
        }
        if took > Duration::from_secs(8) {
            failures.push(format!("{}: took {took:?} (hang)", c.name));
        }
        if let Some(k) = &c.key
            && p.object_exists(BUCKET, k)
        {
            failures.push(format!("{}: object {k} was stored", c.name));
        }
        let h = request(p.addr, &health);
        if h.as_ref().map(|r| (r.status, r.body.as_slice())) != Some((200, content.as_slice())) {
            failures.push(format!("{}: the proxy stopped serving afterwards", c.name));
        }
    }
    // Traversal did not write outside the data directory either.
    let root = p
        .data
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    for f in stored_objects(&root) {
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("passwd"))
        {
            failures.push(format!("traversal wrote {}", f.display()));
        }
    }
    for f in ["/tmp/passwd", "/tmp/passwd2", "/tmp/passwd3"] {
        if std::path::Path::new(f).exists() {
            failures.push(format!("traversal wrote {f}"));
        }
    }
    let panicked = panics.load(Ordering::SeqCst);
    println!(
        "bad_requests_more: {} cases, {} failures, {panicked} panics, slowest {slowest:?}",
        cases.len(),
        failures.len()
    );
    assert_eq!(panicked, 0, "tasks panicked");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
