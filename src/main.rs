//! The `seqlab` binary: parse the command line and hand over to the library.
use clap::Parser;

fn main() {
    seqlab::runtime::keep_freed_memory();
    seqlab::runtime::quiet_broken_pipe();
    let cli = seqlab::cli::Cli::parse();
    match seqlab::cli::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("seqlab: error: {e:#}");
            std::process::exit(1);
        }
    }
}
