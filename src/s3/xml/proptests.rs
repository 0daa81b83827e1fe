//! Property tests for the list-result rewriting the GET-side handlers do: generated
//! ListBucketResult documents (keys with every character XML must escape) keep their
//! keys and structure when `<Size>` is rewritten, and mutated documents never panic.
//! 1,000 cases unless `PROPTEST_CASES` says otherwise.

use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn list_doc(entries: &[(String, u64)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>b</Name><KeyCount>",
    );
    xml.push_str(&entries.len().to_string());
    xml.push_str("</KeyCount>");
    for (k, size) in entries {
        xml.push_str("<Contents><Key>");
        xml.push_str(&escape(k));
        xml.push_str("</Key><ETag>&quot;abc&quot;</ETag><Size>");
        xml.push_str(&size.to_string());
        xml.push_str("</Size></Contents>");
    }
    xml.push_str("</ListBucketResult>");
    xml
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rewriting_sizes_keeps_keys_and_structure(
        entries in proptest::collection::vec(("\\PC{0,40}", any::<u64>()), 0..20),
    ) {
        let doc = list_doc(&entries);
        let out = rewrite_blocks(&doc, "Contents", |b| {
            let size: u64 = element_texts(b, "Size").first().and_then(|s| s.parse().ok()).unwrap_or(0);
            replace_first(b, "Size", &(size / 2).to_string())
        });
        let keys: Vec<String> = element_texts(&out, "Key").into_iter().map(unescape).collect();
        let want: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(keys, want);
        let sizes: Vec<u64> = element_texts(&out, "Size").iter().filter_map(|s| s.parse().ok()).collect();
        let want: Vec<u64> = entries.iter().map(|(_, s)| s / 2).collect();
        prop_assert_eq!(sizes, want);
        prop_assert!(out.starts_with("<?xml") && out.ends_with("</ListBucketResult>"));
    }

    #[test]
    fn unescape_inverts_escape(s in "\\PC{0,80}") {
        prop_assert_eq!(unescape(&escape(&s)), s);
    }

    #[test]
    fn mutated_documents_never_panic(
        entries in proptest::collection::vec(("[a-z&<>]{0,10}", 0u64..1000), 1..5),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..10),
    ) {
        let mut bytes = list_doc(&entries).into_bytes();
        for (at, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => { bytes.remove(i); }
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        let doc = String::from_utf8_lossy(&bytes).into_owned();
        let identity = rewrite_blocks(&doc, "Contents", |b| b.to_string());
        prop_assert_eq!(&identity, &doc);
        let out = rewrite_blocks(&doc, "Contents", |b| replace_first(b, "Size", "0"));
        for t in element_texts(&out, "Size") {
            let _ = unescape(t);
        }
    }
}
