//! The S3 protocol surface: operation names and routing ([`op`]), errors as S3 XML
//! ([`error`]), header names ([`headers`]) and the request handlers.

pub mod checksum_meta;
pub mod encryption;
pub mod error;
pub mod facts;
pub mod handlers;
pub mod headers;
pub mod op;
pub mod range;
pub mod uploads;
pub mod xml;
