//! `keysim`: the command line.
fn main() {}
