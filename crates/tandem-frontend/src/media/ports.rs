//! The RTP port range: each stream binds the next free even port (RTCP, when not multiplexed,
//! would take the odd one above), skipping ports in use by this process or anyone else, and
//! gives it back when its lease drops.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::MediaIoError;

#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    state: Mutex<(u16, HashSet<u16>)>,
}

/// A bound port, released when dropped.
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<PortPool>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.state.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&self.port);
    }
}

impl PortPool {
    /// Ports `min..=max` on `ip` (an odd `min` starts at the next even port).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<PortPool> {
        let first = min + min % 2;
        Arc::new(PortPool { ip, min: first, max, state: Mutex::new((first, HashSet::new())) })
    }

    /// Ports in the range that can be leased at once.
    pub fn capacity(&self) -> usize {
        if self.max < self.min { 0 } else { usize::from((self.max - self.min) / 2 + 1) }
    }

    /// Binds the next free port.
    pub async fn bind(self: &Arc<Self>) -> Result<(UdpSocket, PortLease), MediaIoError> {
        for _ in 0..self.capacity() {
            let port = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let port = st.0;
                st.0 = if port.saturating_add(2) > self.max { self.min } else { port + 2 };
                if !st.1.insert(port) {
                    continue;
                }
                port
            };
            match UdpSocket::bind(SocketAddr::new(self.ip, port)).await {
                Ok(socket) => return Ok((socket, PortLease { pool: self.clone(), port })),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&port);
                }
                Err(e) => {
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&port);
                    return Err(e.into());
                }
            }
        }
        Err(MediaIoError::NoPort { min: self.min, max: self.max })
    }
}
