use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;
use crate::sys::{Kernel, NodeKind, RealKernel};
use crate::testutil::{chmod, chown, set_mtime, tree};

/// A layer dir exercising every kind of metadata export must keep.
fn sample_layer(dir: &Path) {
    let long_dir = dir.join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(90)), b"deep").unwrap();
    fs::create_dir(dir.join("tmp")).unwrap();
    chmod(&dir.join("tmp"), 0o1777);
    fs::create_dir(dir.join("secret")).unwrap();
    chmod(&dir.join("secret"), 0o700);
    chown(&dir.join("secret"), 1000, 1000);
    fs::create_dir(dir.join("shared")).unwrap();
    chmod(&dir.join("shared"), 0o2775);
    fs::create_dir(dir.join("bin")).unwrap();
    fs::write(dir.join("bin/su"), b"#!setuid").unwrap();
    chmod(&dir.join("bin/su"), 0o4755);
    fs::write(dir.join("secret/data"), b"payload").unwrap();
    chown(&dir.join("secret/data"), 1234, 5678);
    chmod(&dir.join("secret/data"), 0o640);
    fs::hard_link(dir.join("secret/data"), dir.join("bin/data-link")).unwrap();
    std::os::unix::fs::symlink("../secret/data", dir.join("bin/sym")).unwrap();
    std::os::unix::fs::symlink("x".repeat(150), dir.join("bin/longsym")).unwrap();
    chown(&dir.join("bin/sym"), 7, 8);
    RealKernel
        .set_xattr(&dir.join("bin/su"), b"user.note", b"hello")
        .unwrap();
    RealKernel
        .mknod(&dir.join("null"), NodeKind::Char, 0o666, 1, 3)
        .unwrap();
    RealKernel
        .mknod(&dir.join("pipe"), NodeKind::Fifo, 0o600, 0, 0)
        .unwrap();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).contents_first(true) {
        set_mtime(entry.unwrap().path(), 1_600_000_000);
    }
}

#[test]
fn round_trip_keeps_modes_owners_links_times_xattrs() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let src = tempfile::tempdir().unwrap();
        sample_layer(src.path());
        let mut blob = Vec::new();
        let digests = export_layer(src.path(), &mut blob, compression).unwrap();
        assert_eq!(digests.digest, Digest::of(&blob));
        assert_eq!(digests.size, blob.len() as u64);

        let dst = tempfile::tempdir().unwrap();
        let applied = apply_layer(blob.as_slice(), dst.path()).unwrap();
        assert_eq!(applied.compression, compression);
        assert_eq!(
            applied.diff_id, digests.diff_id,
            "diff id is the digest of the uncompressed tar"
        );

        let (before, after) = (tree(src.path()), tree(dst.path()));
        assert_eq!(before, after, "{compression:?}");
        assert_eq!(after[Path::new("tmp")].mode, 0o1777);
        assert_eq!(after[Path::new("secret")].mode, 0o700);
        assert_eq!(after[Path::new("shared")].mode, 0o2775);
        assert_eq!(after[Path::new("bin/su")].mode, 0o4755);
        assert_eq!(
            (
                after[Path::new("secret/data")].uid,
                after[Path::new("secret/data")].gid
            ),
            (1234, 5678)
        );
        let a = fs::metadata(dst.path().join("secret/data")).unwrap();
        let b = fs::metadata(dst.path().join("bin/data-link")).unwrap();
        assert_eq!(a.ino(), b.ino(), "hardlink must stay a hardlink");
    }
}

#[test]
fn export_is_deterministic_and_uses_ustar_or_pax_names() {
    let src = tempfile::tempdir().unwrap();
    sample_layer(src.path());
    let mut one = Vec::new();
    let mut two = Vec::new();
    let d1 = export_layer(src.path(), &mut one, Compression::Gzip).unwrap();
    let d2 = export_layer(src.path(), &mut two, Compression::Gzip).unwrap();
    assert_eq!(d1, d2);
    assert_eq!(one, two);

    let mut plain = Vec::new();
    export_layer(src.path(), &mut plain, Compression::None).unwrap();
    let names = entry_names(&plain);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are emitted in sorted order");
    assert!(names.contains(&"tmp/".to_string()));
    assert!(
        names.iter().any(|n| n.ends_with(&"f".repeat(90))),
        "long path survives: {names:?}"
    );
    let mut archive = tar::Archive::new(plain.as_slice());
    let link = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap() == Path::new("secret/data"))
        .map(|e| {
            (
                e.header().entry_type(),
                e.link_name().unwrap().unwrap().into_owned(),
            )
        });
    assert_eq!(link, Some((tar::EntryType::Link, "bin/data-link".into())));
}

fn entry_names(tar_bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect()
}

#[test]
fn overlay_whiteouts_become_oci_whiteouts_and_back() {
    let src = tempfile::tempdir().unwrap();
    RealKernel
        .mknod(&src.path().join("gone"), NodeKind::Char, 0, 0, 0)
        .unwrap();
    fs::create_dir(src.path().join("replaced")).unwrap();
    RealKernel
        .set_xattr(
            &src.path().join("replaced"),
            b"trusted.overlay.opaque",
            b"y",
        )
        .unwrap();
    fs::write(src.path().join("replaced/new"), b"n").unwrap();
    let mut plain = Vec::new();
    export_layer(src.path(), &mut plain, Compression::None).unwrap();
    assert_eq!(
        entry_names(&plain),
        [
            ".wh.gone",
            "replaced/",
            "replaced/.wh..wh..opq",
            "replaced/new"
        ]
    );

    let dst = tempfile::tempdir().unwrap();
    apply_layer(plain.as_slice(), dst.path()).unwrap();
    let facts = tree(dst.path());
    assert_eq!(facts[Path::new("gone")].kind, "char");
    assert_eq!(facts[Path::new("gone")].data, b"0:0");
    assert!(facts[Path::new("replaced")]
        .xattrs
        .contains(&("trusted.overlay.opaque".into(), b"y".to_vec())));
    assert_eq!(facts[Path::new("replaced/new")].data, b"n");
    assert!(!dst.path().join("replaced/.wh..wh..opq").exists());
}

/// A tar whose entries are written with raw names (no validation), as an attacker would.
fn raw_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"x"
        } else {
            b""
        };
        let mut h = tar::Header::new_ustar();
        put_bytes(&mut h.as_old_mut().name, name.as_bytes());
        put_bytes(&mut h.as_old_mut().linkname, link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn malicious_entries_are_refused() {
    use tar::EntryType::{Link, Regular, Symlink};
    for case in 0..7 {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = sandbox.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("outside-file"), b"secret").unwrap();
        let out = outside.to_str().unwrap();
        let layer = sandbox.path().join("layer");
        fs::create_dir(&layer).unwrap();
        let bytes = match case {
            0 => raw_tar(&[("../escaped", Regular, "")]),
            1 => raw_tar(&[("a/../../escaped", Regular, "")]),
            2 => raw_tar(&[(
                &format!("{}/escaped", sandbox.path().display()),
                Regular,
                "",
            )]),
            3 => raw_tar(&[("evil", Symlink, out), ("evil/escaped", Regular, "")]),
            4 => raw_tar(&[("hl", Link, "../outside/outside-file")]),
            5 => raw_tar(&[("hl", Link, &format!("{out}/outside-file"))]),
            _ => raw_tar(&[("evil", Symlink, out), ("hl", Link, "evil/outside-file")]),
        };
        let err = apply_layer(bytes.as_slice(), &layer).unwrap_err();
        assert!(err.is_unsafe_entry(), "case {case}: {err}");
        assert!(!sandbox.path().join("escaped").exists(), "case {case}");
        assert!(!outside.join("escaped").exists(), "case {case}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1, "case {case}");
        assert_eq!(
            fs::metadata(outside.join("outside-file")).unwrap().nlink(),
            1,
            "case {case}"
        );
        assert!(!layer.join("hl").exists(), "case {case}");
    }
}

#[test]
fn overlay_xattrs_in_a_tar_are_not_trusted() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", b"y".as_slice()),
        ("SCHILY.xattr.user.ok", b"1"),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("d").unwrap();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let bytes = b.into_inner().unwrap();
    let dst = tempfile::tempdir().unwrap();
    apply_layer(bytes.as_slice(), dst.path()).unwrap();
    let xattrs = &tree(dst.path())[Path::new("d")].xattrs;
    assert_eq!(xattrs, &vec![("user.ok".to_string(), b"1".to_vec())]);
}

#[test]
fn store_export_writes_a_verified_blob() {
    let src = tempfile::tempdir().unwrap();
    sample_layer(src.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(store_dir.path()).unwrap();
    let digests = export_layer_to_store(src.path(), &store, Compression::Zstd).unwrap();
    let blob = store.read(&digests.digest).unwrap();
    assert_eq!(blob.len() as u64, digests.size);
    let mut decoded = Vec::new();
    zstd::stream::read::Decoder::new(blob.as_slice())
        .unwrap()
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(Digest::of(&decoded), digests.diff_id);
}

#[test]
fn empty_numeric_header_fields_read_as_zero_and_garbage_is_refused() {
    // A GNU header as some writers leave it: uid, gid and mtime never set (all NUL bytes).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_mode(0o640);
    h.set_size(2);
    h.set_cksum();
    assert!(h.uid().is_err(), "the tar crate refuses the empty field itself");
    let numbers = HeaderNumbers::of(&h).unwrap();
    assert_eq!((numbers.uid, numbers.gid, numbers.mode, numbers.mtime), (0, 0, 0o640, 0));
    b.append(&h, &b"hi"[..]).unwrap();
    let dst = tempfile::tempdir().unwrap();
    apply_layer(b.into_inner().unwrap().as_slice(), dst.path()).unwrap();
    let meta = fs::metadata(dst.path().join("f")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o640));

    let mut bad = tar::Header::new_gnu();
    bad.as_old_mut().uid.copy_from_slice(b"12x4567\0");
    assert!(HeaderNumbers::of(&bad).is_err(), "non-octal digits stay an error");
}
