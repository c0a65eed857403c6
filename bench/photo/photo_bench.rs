//! GetUserPhoto benchmark client: uploads a photo through `tandem exchange set-user-photo` (the
//! picture is made here, 1024×1024 JPEG), then drives the REST form of a running tandem over HTTPS
//! (keep-alive, rustls with the deployment's CA) and prints one JSON object with the figures:
//! - upload: the command's wall time (decode, nine resizes, nine JPEG encodes, the store write);
//! - uncached: `GET …/s/GetUserPhoto?email=…&size=…` with no ETag, answered 200 with the JPEG;
//! - cached: the same with `If-None-Match` of the ETag the client holds, answered 304.
//!
//! Built as an example of `tandem-mailbox`; `bench/photo/run.sh` starts the server and runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

struct Args {
    url: String,
    ca: String,
    user: String,
    password: String,
    tandem: String,
    data_dir: String,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        ca: String::new(),
        user: String::new(),
        password: String::new(),
        tandem: String::new(),
        data_dir: String::new(),
        runs: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("every option takes a value");
        match k.as_str() {
            "--url" => a.url = v,
            "--ca" => a.ca = v,
            "--user" => a.user = v,
            "--password" => a.password = v,
            "--tandem" => a.tandem = v,
            "--data-dir" => a.data_dir = v,
            "--runs" => a.runs = v.parse().expect("a number"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// p50 and p99 (ms) of `runs` GETs of `url`, each answered `want`.
async fn latency(http: &reqwest::Client, a: &Args, url: &str, etag: Option<&str>, want: u16) -> (f64, f64, usize) {
    let get = || {
        let mut r = http.get(url).basic_auth(&a.user, Some(&a.password));
        if let Some(t) = etag {
            r = r.header("If-None-Match", t);
        }
        r
    };
    let mut bytes = 0;
    for _ in 0..20 {
        get().send().await.expect("request").bytes().await.expect("body");
    }
    let mut v = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let t = Instant::now();
        let resp = get().send().await.expect("request");
        assert_eq!(resp.status().as_u16(), want);
        bytes = resp.bytes().await.expect("body").len();
        v.push(t.elapsed());
    }
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.99), bytes)
}

#[tokio::main]
async fn main() {
    rustls::crypto::aws_lc_rs::default_provider().install_default().ok();
    let a = args();
    // The picture: a 1024×1024 gradient, JPEG.
    let img = image::RgbImage::from_fn(1024, 1024, |x, y| image::Rgb([(x / 4) as u8, (y / 4) as u8, 120]));
    let dir = std::env::temp_dir().join(format!("photo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("picture.jpg");
    image::DynamicImage::ImageRgb8(img).save_with_format(&file, image::ImageFormat::Jpeg).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(&a.tandem)
        .args(["exchange", "set-user-photo", "--identity", "alice", "--picture-data"])
        .arg(&file)
        .args(["--data-dir", &a.data_dir])
        .output()
        .expect("tandem exchange set-user-photo");
    let upload_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&a.ca).expect("CA file")).expect("CA");
    let http =
        reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(30)).build().expect("client");
    let mut figures = serde_json::Map::new();
    figures.insert("upload_ms".into(), serde_json::json!(upload_ms));
    figures.insert("runs".into(), serde_json::json!(a.runs));
    for size in ["HR96x96", "HR648x648"] {
        let url = format!("{}/s/GetUserPhoto?email={}&size={size}", a.url, a.user);
        let first = http.get(&url).basic_auth(&a.user, Some(&a.password)).send().await.expect("request");
        assert_eq!(first.status().as_u16(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let (p50, p99, bytes) = latency(&http, &a, &url, None, 200).await;
        figures.insert(format!("{size}_uncached"), serde_json::json!({"p50_ms": p50, "p99_ms": p99, "bytes": bytes}));
        let (p50, p99, _) = latency(&http, &a, &url, Some(&etag), 304).await;
        figures.insert(format!("{size}_cached_304"), serde_json::json!({"p50_ms": p50, "p99_ms": p99}));
    }
    println!("{}", serde_json::Value::Object(figures));
}
