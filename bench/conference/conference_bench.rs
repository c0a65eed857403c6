//! Conference mixing load: N conferences of M G.711 legs on loopback through the Front End's own
//! mixing thread (`conference::media::Engine`, the code the focus runs), fed by a load generator
//! thread that plays each leg's 20 ms PCMU frames in real time and drains what the mixer sends
//! back. Prints JSON: legs, ticks, late ticks (a tick that started a whole frame after its
//! deadline), the longest tick, the mixing thread's busy share of one core, CPU per leg, packets
//! in and out, and frames the generator received per leg (50 a second when nothing is lost).
//!
//!   conference_bench [--conferences 100] [--legs 10] [--seconds 20] [--port-min 30000]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tandem_frontend::conference::media::{Command, Engine};
use tandem_frontend::media::ports::PortPool;
use tandem_media::g711::Law;
use tandem_media::mixer::LegConfig;
use tandem_media::rtp;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds (user + system) of this process so far, from /proc (100 ticks a second).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let conferences = arg(&args, "--conferences", 100);
    let legs_per = arg(&args, "--legs", 10);
    let seconds = arg(&args, "--seconds", 20);
    let port_min = arg(&args, "--port-min", 30000) as u16;
    let total = (conferences * legs_per) as usize;
    let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port_min, port_min + (total as u16) * 2 + 2);
    let (etx, _erx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::start(etx).expect("mixing thread");
    // The generator's side: one socket per leg, sending to the leg's port.
    let mut phones = Vec::with_capacity(total);
    for c in 0..conferences {
        for l in 0..legs_per {
            let phone = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("phone socket");
            phone.set_nonblocking(true).expect("non-blocking");
            let (socket, lease) = pool.bind().await.expect("a port for each leg (raise --port-min range)");
            let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), lease.port);
            engine.send(Command::AddLeg {
                conference: format!("C{c}"),
                leg: c * legs_per + l,
                socket: socket.into_std().expect("std socket"),
                lease,
                remote: phone.local_addr().expect("addr"),
                config: LegConfig { law: Law::Ulaw, event_pt: Some(101), ssrc: (c * legs_per + l) as u32 },
                held: false,
            });
            phones.push((phone, to, 300.0 + 97.0 * l as f64));
        }
    }
    let cpu0 = process_cpu();
    let busy0 = engine.stats.busy_micros.load(Ordering::Relaxed);
    let ticks0 = engine.stats.ticks.load(Ordering::Relaxed);
    let late0 = engine.stats.late_ticks.load(Ordering::Relaxed);
    let started = Instant::now();
    let generator = std::thread::spawn(move || {
        let mut received = 0u64;
        let mut buf = [0u8; 1500];
        let frames = seconds * 50;
        let mut next = Instant::now();
        for f in 0..frames {
            for (i, (phone, to, hz)) in phones.iter().enumerate() {
                let samples: Vec<i16> = (0..160)
                    .map(|n| {
                        let t = (f * 160 + n) as f64 / 8000.0;
                        (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
                    })
                    .collect();
                let payload = Law::Ulaw.encode(&samples);
                let p = rtp::Packet {
                    marker: f == 0,
                    payload_type: 0,
                    sequence: f as u16,
                    timestamp: (f * 160) as u32,
                    ssrc: 0x5000 + i as u32,
                    csrcs: vec![],
                    payload: &payload,
                };
                let _ = phone.send_to(&p.to_bytes(), to);
                while phone.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
            }
            next += Duration::from_millis(20);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        received
    });
    let received = tokio::task::spawn_blocking(move || generator.join().unwrap_or(0)).await.unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    let s = &engine.stats;
    let ticks = s.ticks.load(Ordering::Relaxed) - ticks0;
    let busy = (s.busy_micros.load(Ordering::Relaxed) - busy0) as f64 / 1e6;
    let cpu = process_cpu() - cpu0;
    println!(
        "{{\"conferences\": {conferences}, \"legs\": {total}, \"seconds\": {elapsed:.1}, \"ticks\": {ticks}, \
         \"late_ticks\": {late}, \"max_tick_ms\": {max:.2}, \"mixing_thread_core_share\": {share:.3}, \
         \"mixing_cpu_us_per_leg_per_second\": {per_leg:.1}, \"process_cpu_share_incl_generator\": {pcpu:.3}, \
         \"packets_in\": {pin}, \"packets_out\": {pout}, \"frames_heard_per_leg_per_second\": {heard:.1}}}",
        late = s.late_ticks.load(Ordering::Relaxed) - late0,
        max = s.max_tick_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        share = busy / elapsed,
        per_leg = busy * 1e6 / elapsed / total as f64,
        pcpu = cpu / elapsed,
        pin = s.packets_in.load(Ordering::Relaxed),
        pout = s.packets_out.load(Ordering::Relaxed),
        heard = received as f64 / total as f64 / elapsed,
    );
}
