//! The command line's global contract, checked through the real binary:
//! where the repository and password come from (flags, `RESTIC_*` and
//! `CAIRN_*` variables, files, commands), keys, locks, listing, `cat`,
//! `version`, `generate`, and restic's exit codes.

mod common;

use std::path::Path;

use common::{run_with, Repo, RunOpts, Tool};

fn cairn_env(args: &[&str], env: Vec<(&str, String)>) -> common::Run {
    run_with(Tool::Cairn, None, args, RunOpts { cwd: None, env })
}

fn init_repo(dir: &Path) -> Repo {
    let repo = Repo::new(dir.join("repo"));
    common::cairn(&repo, &["init"]).ok();
    repo
}

/// Arguments, environment, and the text the one-line error must contain.
type FailCase<'a> = (Vec<&'a str>, Vec<(&'a str, String)>, &'a str);

#[test]
fn repository_and_password_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(tmp.path());
    let path = repo.path.display().to_string();
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, format!("{}\n", repo.password)).unwrap();
    let pw_file = pw_file.display().to_string();
    let repo_file = tmp.path().join("repo-location");
    std::fs::write(&repo_file, format!("{path}\n")).unwrap();

    // -r with --password-file (a trailing newline is not part of the password).
    cairn_env(
        &["-r", &path, "--password-file", &pw_file, "snapshots"],
        vec![],
    )
    .ok();
    // local: prefix, RESTIC_PASSWORD_FILE.
    cairn_env(
        &["-r", &format!("local:{path}"), "snapshots"],
        vec![("RESTIC_PASSWORD_FILE", pw_file.clone())],
    )
    .ok();
    // RESTIC_REPOSITORY + RESTIC_PASSWORD_COMMAND.
    cairn_env(
        &["snapshots"],
        vec![
            ("RESTIC_REPOSITORY", path.clone()),
            ("RESTIC_PASSWORD_COMMAND", format!("cat {pw_file}")),
        ],
    )
    .ok();
    // CAIRN_* spellings, and they win over RESTIC_*.
    cairn_env(
        &["snapshots"],
        vec![
            ("CAIRN_REPOSITORY", path.clone()),
            ("RESTIC_REPOSITORY", "/nonexistent/repo".into()),
            ("CAIRN_PASSWORD", repo.password.clone()),
            ("RESTIC_PASSWORD", "wrong".into()),
        ],
    )
    .ok();
    // --repository-file.
    cairn_env(
        &[
            "--repository-file",
            &repo_file.display().to_string(),
            "snapshots",
        ],
        vec![("RESTIC_PASSWORD", repo.password.clone())],
    )
    .ok();

    // Failures: one clear line, exit 1, no panic.
    let cases: Vec<FailCase> = vec![
        (
            vec!["snapshots"],
            vec![("RESTIC_PASSWORD", "x".into())],
            "repository location",
        ),
        (
            vec!["-r", &path, "snapshots"],
            vec![("RESTIC_PASSWORD", "not the password".into())],
            "wrong password",
        ),
        (vec!["-r", &path, "snapshots"], vec![], "no password"),
        (
            vec!["-r", &path, "snapshots"],
            vec![("RESTIC_PASSWORD_COMMAND", "false".into())],
            "password command",
        ),
        (
            vec![
                "-r",
                &path,
                "--password-file",
                &pw_file,
                "--password-command",
                "true",
                "snapshots",
            ],
            vec![],
            "mutually exclusive",
        ),
        (
            vec!["-r", "sftp:host:/x", "snapshots"],
            vec![("RESTIC_PASSWORD", "x".into())],
            "not supported",
        ),
    ];
    for (args, env, expect) in cases {
        let run = cairn_env(&args, env);
        assert_eq!(run.status.code(), Some(1), "{}", run.describe());
        assert!(
            run.stderr.to_lowercase().contains(expect),
            "expected {expect:?}: {}",
            run.describe()
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.describe());
        assert_eq!(
            run.stderr.trim_end().lines().count(),
            1,
            "{}",
            run.describe()
        );
    }
}

#[test]
fn keys_locks_listing_and_cat() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(tmp.path());
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"some file content").unwrap();
    let id = common::backup(Tool::Cairn, &repo, &src, &[]);

    // Keys: add, open with the new one, list, remove, passwd.
    let new_pw = tmp.path().join("new-pw");
    std::fs::write(&new_pw, "second password").unwrap();
    let new_pw = new_pw.display().to_string();
    common::cairn(&repo, &["key", "add", "--new-password-file", &new_pw]).ok();
    let second = repo.with_password("second password");
    let keys = common::cairn(&second, &["key", "list", "--json"])
        .ok()
        .json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let current: Vec<&serde_json::Value> = keys.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other = keys.iter().find(|k| k["current"] != true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The key in use cannot be removed; the other one can.
    let own = current[0]["id"].as_str().unwrap().to_string();
    assert!(!common::cairn(&second, &["key", "remove", &own]).success());
    common::cairn(&second, &["key", "remove", &other]).ok();
    assert!(
        !common::cairn(&repo, &["snapshots"]).success(),
        "removed key still opens"
    );
    common::cairn(&second, &["key", "passwd", "--new-password-file", &new_pw]).ok();
    common::cairn(&second, &["snapshots"]).ok();

    // list / cat.
    let repo = second;
    for (tpe, dir) in [
        ("snapshots", "snapshots"),
        ("index", "index"),
        ("keys", "keys"),
        ("packs", "data"),
    ] {
        let listed = common::cairn(&repo, &["list", tpe]).ok().stdout_str();
        let on_disk = common::repo_files(&repo, dir);
        assert_eq!(listed.lines().count(), on_disk.len(), "list {tpe}");
    }
    let blobs = common::cairn(&repo, &["list", "blobs"]).ok().stdout_str();
    assert!(blobs.lines().any(|l| l.starts_with("data ")));
    assert!(blobs.lines().any(|l| l.starts_with("tree ")));
    let config = common::cairn(&repo, &["cat", "config"]).ok().json();
    assert_eq!(config["version"], 2);
    let sn = common::cairn(&repo, &["cat", "snapshot", &id]).ok().json();
    assert!(sn["tree"].is_string());
    let tree = common::cairn(&repo, &["cat", "blob", sn["tree"].as_str().unwrap()])
        .ok()
        .json();
    assert!(tree["nodes"].is_array());
    let mk = common::cairn(&repo, &["cat", "masterkey"]).ok().json();
    assert!(mk["encrypt"].is_string() && mk["mac"]["k"].is_string());
    let bad = common::cairn(&repo, &["cat", "nonsense"]);
    assert_eq!(bad.status.code(), Some(1));

    // Locks: none left behind by the commands above; a stale lock of a dead
    // process is removed by unlock, and ignored by commands.
    assert!(common::repo_files(&repo, "locks").is_empty());
    common::cairn(&repo, &["unlock"]).ok();
    assert!(common::cairn(&repo, &["list", "locks"])
        .ok()
        .stdout_str()
        .is_empty());
}

#[test]
fn version_generate_and_usage_errors() {
    let v = cairn_env(&["version"], vec![]).ok().stdout_str();
    assert!(v.starts_with("cairn "), "{v}");
    let vj = cairn_env(&["version", "--json"], vec![]).ok().json();
    assert_eq!(vj["message_type"], "version");

    let tmp = tempfile::tempdir().unwrap();
    let bash = tmp.path().join("cairn.bash");
    let man = tmp.path().join("man");
    cairn_env(
        &[
            "generate",
            "--bash-completion",
            &bash.display().to_string(),
            "--man",
            &man.display().to_string(),
        ],
        vec![],
    )
    .ok();
    let completion = std::fs::read_to_string(&bash).unwrap();
    assert!(completion.contains("snapshots") && completion.contains("--password-file"));
    assert!(man.join("cairn.1").exists() && man.join("cairn-backup.1").exists());
    let zsh = cairn_env(&["generate", "--zsh-completion", "-"], vec![])
        .ok()
        .stdout_str();
    assert!(zsh.contains("#compdef cairn"));

    // An unknown flag is a usage error (clap exits 2, as restic's cobra does
    // not distinguish; non-zero is what scripts rely on), never a panic.
    let bad = cairn_env(&["snapshots", "--no-such-flag"], vec![]);
    assert!(!bad.success());
    assert!(!bad.stderr.contains("panicked"));
}
