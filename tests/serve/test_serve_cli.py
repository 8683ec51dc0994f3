from __future__ import annotations

import fcntl
import socket

from impasto.cli import main


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_another_address_needs_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("IMPASTO_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--data", str(tmp_path)]) == 2
    assert "give --token" in one_line_error(capsys)


def test_a_busy_port_and_a_busy_data_folder_are_refused(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data", str(tmp_path / "a")]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(capsys)
    (tmp_path / "b").mkdir()
    with open(tmp_path / "b" / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running server holds it
        assert main(["serve", "--data", str(tmp_path / "b")]) == 2
        assert "another impasto serve is using" in one_line_error(capsys)


def test_a_data_path_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["serve", "--data", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot create the data folder" in one_line_error(capsys)


def test_a_device_no_worker_can_use_is_refused_at_the_start(tmp_path, capsys):
    """serve --device meta once started, then failed every job."""
    for device, words in (("meta", "unknown --device 'meta'; valid: cpu, cuda, cuda:N, mps, auto"),
                          ("cpu,meta", "unknown --device 'meta'"), ("cuda:0", "CUDA is not available")):
        assert main(["serve", "--device", device, "--data", str(tmp_path / "d")]) == 2
        assert words in one_line_error(capsys)
        assert not (tmp_path / "d").exists()  # refused before the data folder is made


def test_limits_that_make_no_sense_are_refused_at_the_start_before_anything_is_made(tmp_path, capsys):
    """Issue 42, item 11: --max-work -1 and --max-video-seconds -5 refused every job, and
    --snapshot-every 0.0001 wrote a snapshot at every step. Each is one line, exit 2, no data folder."""
    data = tmp_path / "data"
    for flags, words in ((["--max-work", "-1"], "--max-work must be positive; got -1"),
                         (["--max-video-seconds", "-5"], "--max-video-seconds must be positive; got -5"),
                         (["--max-video-work", "0"], "--max-video-work must be positive"),
                         (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
                         (["--snapshot-every", "0.0001"], "--snapshot-every must be 0 (at scale ends only) or at "
                                                          "least 0.5 seconds; got 0.0001"),
                         (["--keep-days", "-1"], "--keep-days must be 0"),
                         (["--lease", "1"], "--lease must be from 2 to 3600")):
        assert main(["serve", "--data", str(data), *flags]) == 2, flags
        assert words in one_line_error(capsys)
        assert not data.exists()
