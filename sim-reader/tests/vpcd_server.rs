//! The vpcd server against a fake vpcd (pcscd side) on loopback: bogus frames, peers that vanish
//! mid-frame, and a peer that is not up yet. The server must survive and serve the next connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sim_reader::vpcd::{self, ServeOptions, ServeStats};
use sim_reader::{CardProfile, Emulator, Reader};

const SELECT_MF: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];

fn options(stop: &Arc<AtomicBool>) -> ServeOptions {
    ServeOptions {
        stop: stop.clone(),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        ..ServeOptions::default()
    }
}

fn start_server(addr: SocketAddr, stop: &Arc<AtomicBool>) -> thread::JoinHandle<ServeStats> {
    let opts = options(stop);
    thread::spawn(move || {
        let mut card = Emulator::new(&CardProfile::default()).unwrap();
        vpcd::serve(&mut card, addr, &opts).unwrap()
    })
}

fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(false).unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn send(s: &mut TcpStream, payload: &[u8]) {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    s.write_all(&f).unwrap();
}

fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len).into()];
    s.read_exact(&mut body).unwrap();
    body
}

/// What the same card answers in-process.
fn reference(command: &[u8]) -> Vec<u8> {
    Emulator::new(&CardProfile::default()).unwrap().transmit(command).unwrap()
}

fn assert_closed_by_server(s: &mut TcpStream) {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(_) => panic!("server sent data instead of closing"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn survives_bogus_frames_and_vanishing_peers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = start_server(listener.local_addr().unwrap(), &stop);
    let atr = uicc_applet::ATR.to_vec();

    // 1: a normal exchange, then a zero-length frame: the server hangs up.
    let mut c = accept(&listener);
    send(&mut c, &[vpcd::CTRL_POWER_ON]);
    send(&mut c, &[vpcd::CTRL_GET_ATR]);
    assert_eq!(recv(&mut c), atr);
    send(&mut c, &SELECT_MF);
    assert_eq!(recv(&mut c), reference(&SELECT_MF));
    c.write_all(&[0, 0]).unwrap();
    assert_closed_by_server(&mut c);

    // 2: the peer announces 100 bytes, sends 10 and disconnects.
    let mut c = accept(&listener);
    c.write_all(&[0, 100]).unwrap();
    c.write_all(&[0xAA; 10]).unwrap();
    drop(c);

    // 3: the peer disconnects inside the length field.
    let mut c = accept(&listener);
    c.write_all(&[0]).unwrap();
    drop(c);

    // 4: the next connection is served normally, including the largest frame and odd payloads.
    let mut c = accept(&listener);
    send(&mut c, &[vpcd::CTRL_GET_ATR]);
    assert_eq!(recv(&mut c), atr);
    send(&mut c, &[3]); // unknown control message: ignored
    send(&mut c, &SELECT_MF);
    assert_eq!(recv(&mut c), reference(&SELECT_MF));
    let huge = vec![0x00; u16::MAX as usize];
    send(&mut c, &huge);
    let r = recv(&mut c);
    assert!(r.len() >= 2, "{r:02X?}");
    send(&mut c, &[0x00, 0xB0]); // shorter than a header: the card answers a status word
    assert!(recv(&mut c).len() >= 2);
    send(&mut c, &[vpcd::CTRL_RESET]);
    send(&mut c, &[vpcd::CTRL_POWER_OFF]);
    send(&mut c, &[vpcd::CTRL_GET_ATR]); // powers the card on again
    assert_eq!(recv(&mut c), atr);

    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap();
    assert_eq!(stats.connections, 4, "{stats:?}");
    assert_eq!(stats.bad_connections, 3, "{stats:?}");
    assert_eq!(stats.apdus, 4, "{stats:?}");
}

#[test]
fn waits_for_a_peer_that_is_not_up_yet_and_reconnects_after_close() {
    // Find a free port, then leave it closed while the server starts.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = start_server(addr, &stop);
    thread::sleep(Duration::from_millis(300));
    let listener = TcpListener::bind(addr).unwrap();
    for _ in 0..2 {
        // pcscd "restarts": each connection is closed cleanly by the peer.
        let mut c = accept(&listener);
        send(&mut c, &[vpcd::CTRL_GET_ATR]);
        assert_eq!(recv(&mut c), uicc_applet::ATR);
        send(&mut c, &SELECT_MF);
        assert_eq!(recv(&mut c), reference(&SELECT_MF));
        drop(c);
    }
    let _third = accept(&listener);
    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap();
    assert_eq!(stats.connections, 3, "{stats:?}");
    assert_eq!(stats.bad_connections, 0, "{stats:?}");
}

#[test]
fn max_duration_stops_a_server_with_no_peer() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let opts = ServeOptions {
        max_duration: Some(Duration::from_millis(200)),
        backoff_min: Duration::from_millis(10),
        ..ServeOptions::default()
    };
    let mut card = Emulator::new(&CardProfile::default()).unwrap();
    let start = Instant::now();
    let stats = vpcd::serve(&mut card, addr, &opts).unwrap();
    assert_eq!(stats.connections, 0);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn without_reconnect_an_absent_peer_is_an_error() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let opts = ServeOptions { reconnect: false, ..ServeOptions::default() };
    let mut card = Emulator::new(&CardProfile::default()).unwrap();
    let err = vpcd::serve(&mut card, addr, &opts).unwrap_err();
    assert!(err.to_string().starts_with(&format!("connecting to vpcd at {addr}")), "{err}");
}
