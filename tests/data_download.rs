//! Downloads end to end against a tiny HTTP server on 127.0.0.1: a good
//! archive lands in place; a corrupt, truncated or missing one leaves no file
//! behind and says what failed and where to put the file by hand.
use seqlab::data::fetch::{
    fetch_imdb_from, fetch_jena_from, locate_imdb, locate_jena, IMDB_FILE, JENA_FILE,
};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn zip_with(name: &str, body: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(body).unwrap();
    w.finish().unwrap().into_inner()
}

/// Serves the routes forever on a free port; returns the base URL.
fn serve() -> String {
    let good = std::fs::read(fixture("imdb_tiny.tar.gz")).unwrap();
    let mut corrupt = good.clone();
    corrupt[100] ^= 0xff;
    let csv = std::fs::read(fixture("jena_head.csv")).unwrap();
    let jena = zip_with("jena_climate_2009_2016.csv", &csv);
    let evil = zip_with("../jena_climate_2009_2016.csv", &csv);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body, announced): (&str, &[u8], usize) = match path.as_str() {
                "/good.tar.gz" => ("200 OK", &good, good.len()),
                "/corrupt.tar.gz" => ("200 OK", &corrupt, corrupt.len()),
                "/truncated.tar.gz" => ("200 OK", &good[..good.len() / 2], good.len()),
                "/jena.zip" => ("200 OK", &jena, jena.len()),
                "/evil.zip" => ("200 OK", &evil, evil.len()),
                _ => ("404 Not Found", b"not here", 8),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
            let _ = s.flush();
        }
    });
    base
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn imdb_download_good_corrupt_truncated_missing() {
    let base = serve();
    let want = sha256(&std::fs::read(fixture("imdb_tiny.tar.gz")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    for (route, needle) in [
        ("corrupt.tar.gz", "SHA-256"),
        ("truncated.tar.gz", "broke off"),
        ("nothing.tar.gz", "HTTP 404"),
    ] {
        let url = format!("{base}/{route}");
        let e = format!("{:#}", fetch_imdb_from(&url, d, Some(&want)).unwrap_err());
        assert!(e.contains(needle) && e.contains(&url), "{route}: {e}");
        assert!(
            e.contains(&d.join(IMDB_FILE).display().to_string()),
            "says where to put it: {e}"
        );
        assert!(listing(d).is_empty(), "{route} left {:?}", listing(d));
    }

    let got = fetch_imdb_from(&format!("{base}/good.tar.gz"), d, Some(&want)).unwrap();
    assert_eq!(got, d.join(IMDB_FILE));
    assert_eq!(listing(d), vec![IMDB_FILE.to_string()]);
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(fixture("imdb_tiny.tar.gz")).unwrap()
    );
    assert_eq!(locate_imdb("", d).unwrap(), got, "present: no download");
}

#[test]
fn jena_download_unzips_and_verifies() {
    let base = serve();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let e = format!(
        "{:#}",
        fetch_jena_from(&format!("{base}/jena.zip"), d, Some(420_551)).unwrap_err()
    );
    assert!(
        e.contains("600 rows, not 420551") && e.contains("jena.zip"),
        "{e}"
    );
    assert!(listing(d).is_empty(), "{:?}", listing(d));

    let e = format!(
        "{:#}",
        fetch_jena_from(&format!("{base}/evil.zip"), d, None).unwrap_err()
    );
    assert!(e.contains("unsafe entry name"), "{e}");
    assert!(listing(d).is_empty(), "{:?}", listing(d));

    let e = format!(
        "{:#}",
        fetch_jena_from(&format!("{base}/good.tar.gz"), d, None).unwrap_err()
    );
    assert!(e.contains("not a zip"), "{e}");
    assert!(listing(d).is_empty(), "{:?}", listing(d));

    let p = fetch_jena_from(&format!("{base}/jena.zip"), d, Some(600)).unwrap();
    assert_eq!(listing(d), vec![JENA_FILE.to_string()]);
    assert_eq!(
        std::fs::read(&p).unwrap(),
        std::fs::read(fixture("jena_head.csv")).unwrap()
    );
    assert_eq!(locate_jena("", d).unwrap(), p);
    let info = seqlab::data::info(d).unwrap();
    assert!(
        info.contains("600 rows") && info.contains("imdb: missing"),
        "{info}"
    );
}

#[test]
fn an_explicit_path_must_exist() {
    let e = format!(
        "{:#}",
        locate_jena("no/such/jena.csv", Path::new(".")).unwrap_err()
    );
    assert!(
        e.contains("data.path") && e.contains("no/such/jena.csv"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        locate_imdb("no/such/aclImdb", Path::new(".")).unwrap_err()
    );
    assert!(e.contains("data.path"), "{e}");
}

#[test]
fn a_jena_zip_put_by_hand_is_unzipped_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(fixture("jena_head.csv")).unwrap();
    let zip = dir.path().join(seqlab::data::fetch::JENA_ZIP);
    std::fs::write(&zip, zip_with("jena_climate_2009_2016.csv", &csv)).unwrap();
    // the official row count is required of a zip in the data folder
    let e = format!("{:#}", locate_jena("", dir.path()).unwrap_err());
    assert!(
        e.contains("600 rows, not 420551") && e.contains(&zip.display().to_string()),
        "{e}"
    );
    assert!(!dir.path().join(JENA_FILE).exists());
    let p = seqlab::data::fetch::install_jena_zip(&zip, dir.path(), Some(600)).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), csv);
}
