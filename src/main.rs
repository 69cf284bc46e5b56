//! The `seqlab` binary: parse the command line and hand over to the library.
fn main() {
    match seqlab::doctor::report() {
        Ok(r) => print!("{r}"),
        Err(e) => {
            eprintln!("seqlab: {e:#}");
            std::process::exit(1);
        }
    }
}
