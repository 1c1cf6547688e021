//! The 1 GiB, 20,000-file tree the tree-hash benchmarks read (`bench_checksum`, `bench_engine`
//! part c), made once under /var/tmp and shared. Included with `#[path]`.

use std::error::Error;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Files in the generated tree.
pub const FILES: u64 = 20_000;
/// Files per directory.
const PER_DIR: u64 = 100;
/// Target total size.
const TOTAL_BYTES: u64 = 1 << 30;

/// Where the tree is kept between runs unless a benchmark is told otherwise.
pub fn default_dir() -> PathBuf {
    PathBuf::from("/var/tmp/hoist-bench-checksum")
}

/// Creates the tree under `dir` unless a previous run completed it; its total size. The files
/// are pseudo-random (incompressible), of varied sizes, 100 per directory.
pub fn generate(dir: &Path) -> Result<u64, Box<dyn Error>> {
    let marker = dir.join(".complete");
    let avg = TOTAL_BYTES / FILES;
    let size_of = |i: u64| 1 + (i * 7919) % (2 * avg);
    let total: u64 = (0..FILES).map(size_of).sum();
    if marker.exists() {
        return Ok(total);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buffer = Vec::new();
    for i in 0..FILES {
        let sub = dir.join(format!("d{:03}", i / PER_DIR));
        fs::create_dir_all(&sub)?;
        buffer.clear();
        while (buffer.len() as u64) < size_of(i) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buffer.extend_from_slice(&state.to_le_bytes());
        }
        buffer.truncate(usize::try_from(size_of(i))?);
        fs::write(sub.join(format!("f{i:05}.bin")), &buffer)?;
    }
    fs::write(marker, "")?;
    Ok(total)
}

/// Reads every file of the tree once, single-threaded, without hashing: the peer figure.
pub fn read_all(dir: &Path) -> Result<(), Box<dyn Error>> {
    let mut buffer = vec![0u8; 1 << 20];
    for sub in fs::read_dir(dir)? {
        let sub = sub?.path();
        if !sub.is_dir() {
            continue;
        }
        for file in fs::read_dir(&sub)? {
            let mut file = fs::File::open(file?.path())?;
            while file.read(&mut buffer)? > 0 {}
        }
    }
    Ok(())
}
