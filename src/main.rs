fn main() {
    println!("sealgate {}", env!("CARGO_PKG_VERSION"));
}
