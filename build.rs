//! Embeds the libtorch library folder as an rpath, so `target/*/seqlab` and the
//! test binaries run without `LD_LIBRARY_PATH` or an activated venv.
//!
//! torch-sys (which has `links = "tch"`) publishes the folder it linked against
//! as `DEP_TCH_LIBTORCH_LIB`; that is the folder the binary must load from.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-env=SEQLAB_LIBTORCH_LIB={dir}");
    }
}
