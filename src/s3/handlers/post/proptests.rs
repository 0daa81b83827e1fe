//! Property tests of the form parser: any form encoded as browsers do, cut anywhere,
//! parses back to its fields and file; mutated forms never panic. 1,000 cases unless
//! `PROPTEST_CASES` says otherwise.

use proptest::prelude::*;

use super::form::tests::parse_cut;
use super::form::{FormParser, file_len_in};

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 1000;
    }
    c
}

/// A form with `fields`, then the file part, then `after` fields (ignored).
fn encode(
    boundary: &str,
    fields: &[(String, Vec<u8>)],
    file: &[u8],
    after: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let mut out = Vec::new();
    let part = |out: &mut Vec<u8>, name: &str, filename: Option<&str>, value: &[u8]| {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = filename {
            out.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (n, v) in fields {
        part(&mut out, n, None, v);
    }
    part(&mut out, "file", Some("f.bin"), file);
    for (n, v) in after {
        part(&mut out, n, None, v);
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn boundary() -> impl Strategy<Value = String> {
    "[A-Za-z0-9'()+_,./:=?-]{1,70}"
}

fn fields() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec(
        (
            "[a-zA-Z][a-zA-Z0-9_-]{0,20}",
            proptest::collection::vec(any::<u8>(), 0..200),
        ),
        0..6,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn forms_round_trip_at_any_cut(
        b in boundary(),
        before in fields(),
        after in fields(),
        file in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let before: Vec<_> = before.into_iter().filter(|(n, _)| !n.eq_ignore_ascii_case("file")).collect();
        let delimiter = FormParser::new(&b).delimiter().to_vec();
        // A form whose values contain its own delimiter is not a valid encoding.
        let contains = |v: &[u8]| super::form::find(&[b"\r\n".as_slice(), v, b"\r\n"].concat(), &delimiter).is_some();
        prop_assume!(!before.iter().any(|(_, v)| contains(v)) && !contains(&file));
        let body = encode(&b, &before, &file, &after);
        let (parsed, part, rest) = parse_cut(&b, &body, &cuts).expect("a valid form parses");
        prop_assert_eq!(parsed.len(), before.len());
        for ((p, v), (n, w)) in parsed.iter().zip(&before) {
            prop_assert_eq!(&p.name, n);
            prop_assert_eq!(v, w);
        }
        let part = part.expect("the file part");
        prop_assert_eq!(part.filename.as_deref(), Some("f.bin"));
        let len = file_len_in(&rest, &delimiter).expect("the file ends at a delimiter");
        prop_assert_eq!(&rest[..len], &file[..]);
        // With no fields after the file, the length rule finds the same file.
        if after.is_empty() {
            let closing = [delimiter.as_slice(), b"--\r\n"].concat();
            prop_assert_eq!(rest.len() - closing.len(), file.len());
            prop_assert!(rest.ends_with(&closing));
        }
    }

    #[test]
    fn mutated_forms_never_panic(
        b in boundary(),
        before in fields(),
        file in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut_to in any::<usize>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut body = encode(&b, &before, &file, &[]);
        for (at, byte) in flips {
            let i = at % body.len();
            body[i] = byte;
        }
        body.truncate(cut_to % (body.len() + 1));
        if let Ok((_, Some(_), rest)) = parse_cut(&b, &body, &cuts) {
            let _ = file_len_in(&rest, FormParser::new(&b).delimiter());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        b in boundary(),
        body in proptest::collection::vec(any::<u8>(), 0..500),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let _ = parse_cut(&b, &body, &cuts);
    }
}
