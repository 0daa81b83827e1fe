//! Micro benchmarks of the proxy's per-request and per-byte work outside AES-GCM
//! (which `benches/crypto.rs` covers): SigV4 verification of one request (header and
//! presigned), a bucket-key cache hit, aws-chunked decoding with and without chunk signatures, every flexible
//! checksum (plus MD5, and the RustCrypto SHA digests beside the aws-lc ones it uses),
//! and the ListObjects size rewrite in keys per second.
//!
//! `cargo bench --bench proxy -- --measurement-time 2 --warm-up-time 1`; results and
//! what they mean: docs/PERFORMANCE.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5::Digest as _;
use sealgate::auth::chunked::ChunkedDecoder;
use sealgate::auth::signing::{ChunkSigner, SigningKey, chunk_string_to_sign};
use sealgate::auth::{
    ChecksumAlgorithm, Checksummer, CredentialStore, DEFAULT_MAX_SKEW, VerifyContext, verify,
};
use sealgate::cache::{BucketKeyCache, CacheConfig, CacheMetrics};
use sealgate::crypto::{object_ciphertext_len, object_plaintext_len};
use sealgate::kms::local::LocalKms;
use sealgate::s3::handlers::get::parts_from_etag;
use sealgate::s3::xml;
use zeroize::Zeroizing;

const AK: &str = "benchaccesskey";
const SK: &str = "benchsecretkey0000000000000000000000000";

/// A request as the aws CLI sends a GET, signed in the header or presigned.
fn signed_parts(location: SignatureLocation, now: SystemTime) -> http::request::Parts {
    let mut req = http::Request::builder()
        .method("GET")
        .uri("http://127.0.0.1:8080/bench-bucket/some/key/with%20space.bin?versionId=3")
        .header("host", "127.0.0.1:8080")
        .header("user-agent", "aws-cli/2.31 md/Botocore#1.40")
        .header("range", "bytes=0-1048575")
        .body(())
        .unwrap();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.signature_location = location;
    // S3's rules: the path is encoded once and never normalised.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(3600));
    }
    let identity: Identity = Credentials::new(AK, SK, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        "GET",
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut req);
    req.into_parts().0
}

fn sigv4(c: &mut Criterion) {
    let now = SystemTime::now();
    let creds = CredentialStore::new([(AK.to_string(), SK.to_string())]);
    let ctx = VerifyContext {
        credentials: &creds,
        now,
        max_skew: DEFAULT_MAX_SKEW,
        allow_sigv2: false,
        vhost_bucket: None,
    };
    let mut g = c.benchmark_group("sigv4-verify");
    g.throughput(Throughput::Elements(1));
    for (name, location) in [
        ("header", SignatureLocation::Headers),
        ("presigned", SignatureLocation::QueryParams),
    ] {
        let parts = signed_parts(location, now);
        // The benchmark must measure a success, not a fast rejection.
        verify(&parts, &ctx).expect("the benchmark request verifies");
        g.bench_function(name, |b| b.iter(|| verify(black_box(&parts), &ctx).is_ok()));
    }
    g.finish();
}

/// A backend GET as `build_upstream_request` makes it.
fn backend_get() -> http::Request<()> {
    http::Request::get("http://127.0.0.1:9000/bucket/some/object-key-0001")
        .header("host", "127.0.0.1:9000")
        .header("range", "bytes=0-31")
        .body(())
        .expect("a valid request")
}

/// A backend PUT of a sealed object: the envelope and checksum metadata, the client's
/// content type and its own metadata, a header that is not signed.
fn backend_put_sealed() -> http::Request<()> {
    let envelope = "A".repeat(264);
    http::Request::put("http://127.0.0.1:9000/bucket/some/object-key-0001")
        .header("host", "127.0.0.1:9000")
        .header("content-length", "4148")
        .header("content-type", "application/octet-stream")
        .header("user-agent", "aws-sdk-rust/1.0")
        .header("x-amz-meta-sealgate-envelope", envelope.as_str())
        .header("x-amz-meta-sealgate-checksum", "CRC32:AAAAAA==")
        .header("x-amz-meta-owner", "team-a")
        .header("x-amz-server-side-encryption", "aws:kms")
        .body(())
        .expect("a valid request")
}

/// Re-signing for the backend: what every proxied request pays on top of verification.
fn backend_sign(c: &mut Criterion) {
    let signer = sealgate::upstream::sign::BackendSigner::new(
        "AKIDEXAMPLEBACKEND01",
        "backend-secret-key-00000000000000000000001",
        "us-east-1",
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut g = c.benchmark_group("sigv4-sign-backend");
    g.throughput(Throughput::Elements(1));
    g.bench_function("GET object", |b| {
        b.iter(|| {
            let mut req = backend_get();
            signer.sign(&mut req, now).is_ok()
        })
    });
    g.bench_function("PUT sealed object", |b| {
        b.iter(|| {
            let mut req = backend_put_sealed();
            signer.sign(&mut req, now).is_ok()
        })
    });
    // The same request signed by aws-sigv4, as the proxy did before it signed itself.
    let identity: Identity = Credentials::new(
        "AKIDEXAMPLEBACKEND01",
        "backend-secret-key-00000000000000000000001",
        None,
        None,
        "bench",
    )
    .into();
    g.bench_function("GET object, aws-sigv4", |b| {
        b.iter(|| {
            let mut req = backend_get();
            let mut settings = SigningSettings::default();
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            sealgate::upstream::sign::sign_headers(
                &mut req,
                &identity,
                "us-east-1",
                "s3",
                settings,
                SignableBody::UnsignedPayload,
                now,
            )
            .is_ok()
        })
    });
    g.finish();
}

const SEGMENT: u32 = 64 * 1024;
const BODY: usize = 1 << 20;
const CHUNK: usize = 64 << 10;
const FRAME: usize = 16 << 10;

/// A 1 MiB aws-chunked body of 64 KiB chunks, with chunk signatures when `key` is set.
fn chunked_body(key: Option<(&SigningKey, &str, &str, [u8; 32])>) -> Vec<u8> {
    let data = vec![0x5au8; CHUNK];
    let mut out = Vec::new();
    let mut previous = key.map(|k| k.3).unwrap_or_default();
    let mut emit = |chunk: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
        if let Some((k, ts, scope, _)) = key {
            let hash: [u8; 32] = sha2::Sha256::digest(chunk).into();
            let sig = k.sign(chunk_string_to_sign(ts, scope, &previous, &hash).as_bytes());
            out.extend_from_slice(format!(";chunk-signature={}", hex::encode(sig)).as_bytes());
            previous = sig;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    };
    for _ in 0..BODY / CHUNK {
        emit(&data, &mut out);
    }
    if key.is_some() {
        emit(&[], &mut out);
    } else {
        // The unsigned mode ends with a trailer (its value is checked by `VerifiedBody`,
        // not by the decoder).
        out.extend_from_slice(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    }
    out
}

fn chunked(c: &mut Criterion) {
    let key = SigningKey::derive(SK, "20260101", "us-east-1", "s3");
    let (ts, scope) = ("20260101T000000Z", "20260101/us-east-1/s3/aws4_request");
    let seed = [7u8; 32];
    let signed = Bytes::from(chunked_body(Some((&key, ts, scope, seed))));
    let unsigned = Bytes::from(chunked_body(None));
    let mut g = c.benchmark_group("aws-chunked-decode/1MiB-in-64KiB-chunks");
    g.throughput(Throughput::Bytes(BODY as u64));
    let run = |body: &Bytes, signer: Option<ChunkSigner>| {
        let trailer = signer.is_none();
        let mut d = ChunkedDecoder::new(signer, trailer, 16 << 20);
        let mut out = Vec::with_capacity(256);
        let mut n = 0;
        let mut at = 0;
        while at < body.len() {
            let end = (at + FRAME).min(body.len());
            out.clear();
            d.decode(body.slice(at..end), &mut out).unwrap();
            n += out.iter().map(Bytes::len).sum::<usize>();
            at = end;
        }
        d.finish().unwrap();
        assert_eq!(n, BODY);
        n
    };
    g.bench_function("signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)", |b| {
        b.iter(|| {
            let signer = ChunkSigner::new(key.clone(), ts.into(), scope.into(), seed);
            run(&signed, Some(signer))
        })
    });
    g.bench_function("unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER)", |b| {
        b.iter(|| run(&unsigned, None))
    });
    g.finish();
}

fn checksums(c: &mut Criterion) {
    let data = vec![0xa5u8; BODY];
    let mut g = c.benchmark_group("checksum/1MiB");
    g.throughput(Throughput::Bytes(BODY as u64));
    for alg in ChecksumAlgorithm::ALL {
        g.bench_function(alg.display_name(), |b| {
            b.iter(|| {
                let mut s = Checksummer::new(alg);
                for piece in data.chunks(FRAME) {
                    s.update(piece);
                }
                s.finalize()
            })
        });
    }
    // Content-MD5 and x-amz-content-sha256 are checked by the verifying body too.
    // The proxy's and the embedded backend's MD5 (aws-lc), and the portable one.
    g.bench_function("MD5 (sealgate-md5, aws-lc)", |b| {
        b.iter(|| {
            let mut h = sealgate_md5::Md5::new();
            for piece in data.chunks(FRAME) {
                h.update(piece);
            }
            h.finalize()
        })
    });
    g.bench_function("MD5 (md-5)", |b| {
        b.iter(|| rustcrypto_digest::<md5::Md5>(&data))
    });
    // Reference points: the pure-Rust SHA crates beside the SHA1/SHA256 rows above,
    // which are the proxy's aws-lc hashers.
    g.bench_function("SHA256 (sha2, RustCrypto)", |b| {
        b.iter(|| rustcrypto_digest::<sha2::Sha256>(&data))
    });
    g.bench_function("SHA1 (sha1, RustCrypto)", |b| {
        b.iter(|| rustcrypto_digest::<sha1::Sha1>(&data))
    });
    g.finish();
}

/// A RustCrypto digest of `data`, fed in wire-frame pieces like the proxy's hashers.
fn rustcrypto_digest<D: md5::Digest>(data: &[u8]) -> impl AsRef<[u8]> {
    let mut h = D::new();
    for piece in data.chunks(FRAME) {
        h.update(piece);
    }
    h.finalize()
}

/// A ListObjectsV2 page of `n` encrypted objects as RGW answers it.
fn listing(n: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult \
         xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bench</Name><Prefix></Prefix>\
         <KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>",
    );
    for i in 0..n {
        // Every fourth object a 3-part upload, as a mixed bucket lists them.
        let (etag, parts) = if i % 4 == 0 {
            ("&quot;0123456789abcdef0123456789abcdef-3&quot;", 3)
        } else {
            ("&quot;0123456789abcdef0123456789abcdef&quot;", 1)
        };
        let size = object_ciphertext_len(1_050_000 + 16 * i as u64, parts, SEGMENT);
        s.push_str(&format!(
            "<Contents><Key>logs/2026/11/23/host-{i:06}.json.gz</Key>\
             <LastModified>2026-11-23T19:00:00.000Z</LastModified><ETag>{etag}</ETag>\
             <Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            size
        ));
    }
    s.push_str("</ListBucketResult>");
    s
}

/// The pure path of `s3::handlers::list::list_objects`: the same helper calls in the
/// same order (a pass computing the sizes, a pass rewriting them).
fn rewrite_sizes(text: &str, segment_size: u32) -> String {
    let mut sizes = Vec::new();
    for b in xml::blocks(text, "Contents") {
        let etag = xml::element_texts(b, "ETag")
            .first()
            .map(|e| xml::unescape(e));
        let size = xml::element_texts(b, "Size")
            .first()
            .and_then(|s| s.trim().parse::<u64>().ok());
        sizes.push(match (etag, size) {
            (Some(etag), Some(c)) => object_plaintext_len(c, parts_from_etag(&etag), segment_size),
            _ => None,
        });
    }
    let mut i = 0;
    xml::rewrite_blocks(text, "Contents", |b| {
        let size = sizes.get(i).copied().flatten();
        i += 1;
        match size {
            Some(p) => xml::replace_first(b, "Size", &p.to_string()),
            None => b.to_string(),
        }
    })
}

fn list_rewrite(c: &mut Criterion) {
    let page = listing(1000);
    // Sizes must really be rewritten, or the benchmark measures the fallback.
    let rewritten = rewrite_sizes(&page, SEGMENT);
    // Object 1 (single part, 1,050,016 plaintext bytes) must list its plaintext size
    // (other objects' plaintext sizes may equal its ciphertext size, so look at its own).
    let own_size = |listing: &str| -> Option<String> {
        let at = listing.find("host-000001.json.gz</Key>")?;
        let rest = &listing[at..];
        let from = rest.find("<Size>")? + "<Size>".len();
        let to = rest[from..].find("</Size>")? + from;
        Some(rest[from..to].to_string())
    };
    assert_eq!(
        own_size(&page),
        Some(object_ciphertext_len(1_050_016, 1, SEGMENT).to_string())
    );
    assert_eq!(own_size(&rewritten).as_deref(), Some("1050016"));
    let mut g = c.benchmark_group("list-size-rewrite");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 keys", |b| {
        b.iter(|| rewrite_sizes(black_box(&page), SEGMENT).len())
    });
    g.finish();
}

/// A hit in the bucket-key cache, as every encrypted PUT (write side) and GET (read
/// side) makes once its bucket key is cached: the price of the S3 Bucket Key model per
/// request once KMS is out of the picture.
fn bucket_key_cache(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        panic!("runtime")
    };
    let kms = Arc::new(LocalKms::from_master_key(Zeroizing::new([7u8; 32])));
    let Ok(metrics) = CacheMetrics::register(&prometheus::Registry::new()) else {
        panic!("metrics")
    };
    let config = CacheConfig {
        ttl: Duration::from_secs(3600),
        max_entries: 1024,
    };
    let cache = BucketKeyCache::new(kms, config, metrics);
    let kms_key_id = "sealgate-local-master";
    let Ok(written) = rt.block_on(cache.key_for_write("bench-bucket", kms_key_id)) else {
        panic!("key_for_write")
    };
    let blob = written.ciphertext_blob.clone();
    let mut g = c.benchmark_group("bucket-key-cache");
    g.bench_function("write hit", |b| {
        b.iter(|| {
            rt.block_on(cache.key_for_write(black_box("bench-bucket"), kms_key_id))
                .is_ok()
        })
    });
    g.bench_function("read hit", |b| {
        b.iter(|| {
            rt.block_on(cache.key_for_read(black_box("bench-bucket"), kms_key_id, &blob))
                .is_ok()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    sigv4,
    bucket_key_cache,
    backend_sign,
    chunked,
    checksums,
    list_rewrite
);
criterion_main!(benches);
