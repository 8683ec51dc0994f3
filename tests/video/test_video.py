import pytest
import torch

import impasto
from impasto.cli import main
from impasto.errors import InputError, StylizeInterrupted
from impasto.io.image import load_image
from impasto.ops.geometry import resize
from impasto.video import VideoConfig, stylize_video, warping_error
from impasto.video.io import probe, read_frames
from impasto.video.pipeline import work_folder

from ..conftest import EXAMPLES, files_in
from .clips import make_clip, streams

FAST = dict(size=40, iterations=2, initial_iterations=3)
QUICK = VideoConfig(frame_iterations=2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=6)


def test_video_keeps_frames_times_and_sound_and_pads_odd_sizes(tmp_path, clip):
    out = tmp_path / "out.mp4"
    stylize_video(clip, EXAMPLES / "starry_night.jpg", out, video=QUICK, **{**FAST, "size": 63})
    got, source = streams(out), streams(clip)
    assert got["frames"] == 6 and got["times"] == source["times"]
    assert got["video"] == (48, 64)  # 63x47 padded by one pixel each way for yuv420p
    assert got["audio"] == source["audio"]  # the AAC stream copied, packet for packet
    assert files_in(tmp_path) == {"out.mp4"}  # the work folder is gone once the video is written


def test_variable_frame_rate_keeps_every_timestamp(tmp_path):
    times = [0.0, 0.1, 0.15, 0.4, 0.45, 0.9]
    vfr = make_clip(tmp_path / "vfr.mp4", frames=6, audio=False, times=times)
    assert streams(vfr)["times"] == times
    out = tmp_path / "out.mp4"
    stylize_video(vfr, EXAMPLES / "wave.jpg", out, video=QUICK, **FAST)
    assert streams(out)["times"] == times


def test_start_and_duration_cut_video_and_sound(tmp_path, clip):
    out = tmp_path / "cut.mp4"
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=VideoConfig(frame_iterations=2, start=0.2, duration=0.3),
                  **FAST)
    got = streams(out)
    assert got["frames"] == 3 and got["times"][0] == 0.0
    assert got["audio"][1] < streams(clip)["audio"][1]


def test_an_interrupted_run_resumes_without_redoing_frames(tmp_path, clip):
    out = tmp_path / "out.mp4"
    token = impasto.CancelToken()
    seen = []

    def stop_after_three(event):
        seen.append(event.frame)
        if event.frame == 3:
            token.cancel()

    with pytest.raises(StylizeInterrupted):
        stylize_video(clip, EXAMPLES / "wave.jpg", out, video=QUICK, callback=stop_after_three, cancel=token, **FAST)
    assert not out.exists() and len(list(work_folder(out).glob("frame_*.png"))) == 3
    events = []
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=QUICK, callback=events.append, **FAST)
    assert [e.resumed for e in events] == [1, 2, 3, 3, 3, 3]  # frames 1-3 from disk, 4-6 made now
    assert streams(out)["frames"] == 6


class _CancelledAfter(impasto.CancelToken):
    """Reads False ``reads`` times, then True (counting how often it was read)."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.reads, self.read = reads, 0

    @property
    def cancelled(self) -> bool:
        self.read += 1
        return self.read > self.reads


def test_cancel_stops_within_a_frame(tmp_path, clip):
    """The probe's 2048 px frame ran 457 s after its cancel: the token was read only between frames.
    Now the optimization reads it before every iteration. Cancelled after the check before frame 2
    and that frame's first iteration, the run stops inside frame 2, which is never written."""
    settings = dict(video=QUICK, **{**FAST, "scales": 1})
    counting, at_frame = _CancelledAfter(reads=10**9), []
    stylize_video(clip, EXAMPLES / "wave.jpg", tmp_path / "whole.mp4", cancel=counting,
                  callback=lambda e: at_frame.append(counting.read), **settings)
    assert at_frame[0] > 2  # frame 1 read the token at its iterations too
    out = tmp_path / "out.mp4"
    token = _CancelledAfter(reads=at_frame[0] + 2)  # frame 2's check before it, and its first iteration's
    with pytest.raises(StylizeInterrupted) as stopped:
        stylize_video(clip, EXAMPLES / "wave.jpg", out, cancel=token, **settings)
    assert stopped.value.cancelled and stopped.value.partial is None
    assert [p.name for p in work_folder(out).glob("frame_*.png")] == ["frame_000001.png"]


def test_changed_settings_start_afresh_and_say_so(tmp_path, clip):
    out = tmp_path / "frames"
    out.mkdir()
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=QUICK, **FAST)
    assert len(list(out.glob("frame_*.png"))) == 6  # a folder output: PNG frames
    notes = []
    events = []
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=QUICK, notes=notes, callback=events.append,
                  **{**FAST, "style_weight": 30})
    assert any("starting afresh" in n for n in notes) and events[-1].resumed == 0


def test_frame_folder_in_gif_out(tmp_path, clip):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    for f in read_frames(clip):  # odd-sized frames (47x63), numbered without leading zeros
        array = (f.image[0, :, :47, :63].permute(1, 2, 0) * 255).byte().numpy()
        impasto.save_image(Image.fromarray(array), folder / f"img{f.index + 1}.png")
    out = tmp_path / "out.gif"
    stylize_video(folder, EXAMPLES / "wave.jpg", out, video=QUICK, **FAST)
    gif = Image.open(out)
    assert gif.n_frames == 6 and gif.size == (40, 30)
    mp4 = tmp_path / "out.mp4"
    stylize_video(folder, EXAMPLES / "wave.jpg", mp4, video=QUICK, **{**FAST, "size": 63})
    assert streams(mp4)["video"] == (48, 64)  # 47x63 padded by one pixel each way


def test_webm_reencodes_the_sound_it_cannot_hold(tmp_path, clip):
    out = tmp_path / "out.webm"
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=QUICK, **FAST)
    got = streams(out)
    assert got["frames"] == 6 and got["audio"][0] == "opus"


def test_rotation_metadata_is_applied_to_the_pixels(tmp_path):
    clip = make_clip(tmp_path / "portrait.mp4", frames=2, audio=False, rotate=90)
    assert probe(clip).size == (64, 48)
    frame = next(read_frames(clip)).image
    assert frame.shape == (1, 3, 64, 48)
    r, g, b = frame[0]
    yellow = (r > 0.75) & (g > 0.65) & (b < 0.25)  # the block at the left, turned 90 degrees: at the bottom
    assert yellow[40:].sum() > 100 and yellow[:32].sum() == 0


def test_fast_model_path(tmp_path, clip, tiny_model):
    out = tmp_path / "fast.mp4"
    stylize_video(clip, [], out, model=tiny_model, style="wave", size=40)
    assert streams(out)["frames"] == 6


def test_warping_error_is_zero_for_a_steady_video_and_grows_with_flicker():
    torch.manual_seed(1)
    frames = [torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8), size=(48, 48), mode="bilinear")] * 3
    assert warping_error(frames, frames) < 1e-6
    flicker = [f + 0.1 * torch.randn_like(f) for f in frames]
    assert warping_error(flicker, frames) > 0.01


def test_bad_inputs_get_one_line_and_write_nothing(tmp_path, clip, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    audio_only = tmp_path / "sound.m4a"
    import av
    import numpy as np

    with av.open(str(audio_only), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    before = files_in(tmp_path)
    style = str(EXAMPLES / "wave.jpg")
    cases = [
        ([text, style, "-o", tmp_path / "o.mp4"], "not a video"),
        ([audio_only, style, "-o", tmp_path / "o.mp4"], "no video stream"),
        ([clip, style, "-o", tmp_path / "o.mp4", "--start", "5"], "outside the clip"),
        ([clip, style, "-o", tmp_path / "o.mp4", "--duration", "9"], "past the end of the clip"),
        ([clip, style, "-o", tmp_path / "o.txt"], "cannot hold a video"),
        ([clip, style, "-o", clip], "is the input"),
        ([clip, "-o", tmp_path / "o.mp4"], "the optimize method needs STYLE image(s)"),
    ]
    for argv, message in cases:
        code = main(["video", *map(str, argv), "--size", "32", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert files_in(tmp_path) == before
    with pytest.raises(InputError, match="crf must be"):
        VideoConfig(crf=99)


def test_a_truncated_mp4_whose_index_is_gone_is_refused_in_one_line(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)  # PyAV writes the mp4 index (moov) at the end
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(clip.read_bytes()[: clip.stat().st_size * 3 // 5])
    with pytest.raises(InputError, match="not a video") as info:
        stylize_video(damaged, EXAMPLES / "wave.jpg", tmp_path / "out.mp4", video=QUICK, **FAST)
    assert "\n" not in str(info.value)
    assert files_in(tmp_path) == {"clip.mp4", "damaged.mp4"}


def test_a_truncated_mkv_keeps_what_decodes_and_says_where_it_stopped(tmp_path):
    clip = make_clip(tmp_path / "clip.mkv", frames=12)  # Matroska declares its duration up front
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(clip.read_bytes()[: clip.stat().st_size * 3 // 5])
    decodable = len(list(read_frames(damaged)))
    assert 1 <= decodable < 12
    notes: list[str] = []
    out = tmp_path / "frames"
    stylize_video(damaged, EXAMPLES / "wave.jpg", out, video=QUICK, notes=notes, **FAST)
    assert len(list(out.glob("frame_*.png"))) == decodable
    assert any("ends early" in n and f"after frame {decodable}" in n for n in notes), notes
    notes.clear()
    stylize_video(clip, EXAMPLES / "wave.jpg", tmp_path / "whole", video=QUICK, notes=notes, **FAST)
    assert not notes  # a whole file says nothing


def test_without_the_video_extra_the_error_says_what_to_install(tmp_path, clip, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    code = main(["video", str(clip), str(EXAMPLES / "wave.jpg"), "-o", str(tmp_path / "o.mp4"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'impasto[video]'" in err and err.count("\n") == 1
    assert files_in(tmp_path) == set()


def _frames(folder):
    return [load_image(p).rgb for p in sorted(folder.glob("frame_*.png"))]


def test_the_temporal_term_lowers_the_warping_error(tmp_path, clip):
    inputs = [resize(f.image, (30, 40)) for f in read_frames(clip)]
    errors = {}
    for weight in (0.0, 200.0):
        out = tmp_path / f"w{weight:g}"
        stylize_video(clip, EXAMPLES / "wave.jpg", out, video=VideoConfig(frame_iterations=10, temporal_weight=weight),
                      size=40, iterations=4, initial_iterations=6, seed=0)
        frames = _frames(out)
        assert frames[0].shape == inputs[0].shape
        errors[weight] = warping_error(frames, inputs)
    assert errors[200.0] < 0.7 * errors[0.0], errors


def test_the_fast_model_blend_changes_the_frames_and_steadies_them(tmp_path, clip, tiny_model):
    inputs = [resize(f.image, (30, 40)) for f in read_frames(clip)]
    got = {}
    for blend in (0.0, 0.7):
        out = tmp_path / f"blend{round(blend * 10)}"
        stylize_video(clip, [], out, model=tiny_model, style="wave", size=40, video=VideoConfig(blend=blend))
        got[blend] = _frames(out)
    assert torch.equal(got[0.0][0], got[0.7][0])  # the first frame has nothing to blend with
    assert (got[0.0][-1] - got[0.7][-1]).abs().mean() > 1e-3
    assert warping_error(got[0.7], inputs) < warping_error(got[0.0], inputs)


def _audio_seconds(path) -> float:
    import av

    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        return samples / a.rate


@pytest.mark.parametrize("ext", [".mp4", ".ts"])
def test_times_count_from_the_first_frame_when_a_stream_does_not_start_at_zero(tmp_path, ext):
    """Video from 0.5 s, audio from 0.3 s (as MPEG streams and camera files have): --start and
    --duration count from the first frame, and the sound is cut to match."""
    clip = make_clip(tmp_path / f"late{ext}", frames=20, fps=10, video_start=0.5, audio_start=0.3,
                     container="mpegts" if ext == ".ts" else None)
    info = probe(clip)
    assert abs(info.origin - 0.5) < 0.05
    frames = list(read_frames(clip, start=0.5, duration=1.0))
    assert len(frames) == 10 and abs(frames[0].time - 0.5) < 0.01  # 1 s at 10 fps, from 0.5 s after the first frame
    out = tmp_path / "out.mp4"
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=VideoConfig(frame_iterations=1, start=0.5, duration=1.0),
                  **{**FAST, "size": 32})
    got = streams(out)
    assert got["frames"] == 10
    assert abs(_audio_seconds(out) - 1.0) < 0.15  # the sound of that second, within about a frame


@pytest.mark.parametrize("ext", [".mp4", ".ts"])
def test_a_late_starting_clip_cut_by_start_and_duration_resumes_from_its_kept_frames(tmp_path, ext):
    """The same clip (video from 0.5 s, audio from 0.3 s), interrupted after 4 of its 10 frames:
    the rerun paints the other 6 only, and the output is still 10 frames and 1 s of sound."""
    from impasto.progress import CancelToken

    clip = make_clip(tmp_path / f"late{ext}", frames=20, fps=10, video_start=0.5, audio_start=0.3,
                     container="mpegts" if ext == ".ts" else None)
    out, cut = tmp_path / "out.mp4", VideoConfig(frame_iterations=1, start=0.5, duration=1.0)
    cancel, resumed = CancelToken(), []

    def stop_after_4(event) -> None:
        if event.frame >= 4:
            cancel.cancel()

    with pytest.raises(StylizeInterrupted):
        stylize_video(clip, EXAMPLES / "wave.jpg", out, video=cut, callback=stop_after_4, cancel=cancel,
                      **{**FAST, "size": 32})
    assert len(list(work_folder(out).glob("frame_*.png"))) == 4
    stylize_video(clip, EXAMPLES / "wave.jpg", out, video=cut, callback=lambda e: resumed.append(e.resumed),
                  **{**FAST, "size": 32})
    assert resumed[-1] == 4 and len(resumed) == 10  # 4 kept frames taken as they were, 6 painted
    assert streams(out)["frames"] == 10
    assert abs(_audio_seconds(out) - 1.0) < 0.15


def test_the_readme_video_commands_run_with_a_fast_model_and_with_wct(tmp_path, clip, photos, capsys):
    """`impasto video clip.mp4 -o out.mp4 --model multistyle6 --style udnie` (the README's, broken since
    the registry landed: the optimization's options were handed to the fast model), and --method wct,
    whose options come from the registry like every command's."""
    from impasto.universal.train import DecoderTrainingConfig, train_decoders

    out = tmp_path / "fast.mp4"
    code = main(["video", str(clip), "-o", str(out), "--model", "multistyle6", "--style", "udnie", "--size", "32",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
    decoders = tmp_path / "d.pt"
    train_decoders([photos], decoders, config=DecoderTrainingConfig(size=32, batch_size=2, steps=1, workers=0,
                                                                     device="cpu"))
    out = tmp_path / "wct.mp4"
    code = main(["video", str(clip), str(EXAMPLES / "wave.jpg"), "-o", str(out), "--method", "wct", "--size", "64",
                 "--set", f"decoders={decoders}", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
    code = main(["video", str(clip), str(EXAMPLES / "wave.jpg"), "-o", str(tmp_path / "x.mp4"), "--method", "wct",
                 "--frame-iterations", "3", "--iterations", "4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "the method 'wct' takes only" in err and "not --iterations" in err, err


def test_an_upload_is_read_with_the_submit_checks_demuxers_only(tmp_path, clip):
    """The worker opened video uploads with every FFmpeg demuxer while the submit check allowed a few:
    one whitelist (video.io.UPLOAD_DEMUXERS) for both. An animated GIF is a video to FFmpeg's gif
    demuxer, which the whitelist leaves out."""
    from PIL import Image

    from impasto.video.io import only_demuxers

    frames = [Image.new("RGB", (32, 24), (40 * i, 0, 0)) for i in range(4)]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert probe(gif).size == (24, 32)  # from the command line: any format FFmpeg reads
    with only_demuxers(), pytest.raises(InputError, match="not a video"):
        probe(gif)
    with only_demuxers():
        assert probe(clip).size  # an mp4 is on the list


def test_progress_moves_for_a_container_that_does_not_count_its_frames(tmp_path):
    """A Matroska file says no frame count: a video job's progress stayed at 0.0 while it painted
    (issue 35, item 4). It is estimated from the duration and frame rate, and stops short of 1."""
    from tests.video.clips import make_clip

    src = make_clip(tmp_path / "in.mkv", frames=5, audio=False)
    assert not probe(src).frames  # the container does not say
    events = []
    stylize_video(src, [], tmp_path / "out.mkv", model="multistyle6", style="udnie", size=32,
                  callback=events.append)
    works = [e.work for e in events]
    assert len(works) == 5 and all(0 < w < 1 for w in works) and works == sorted(works), works
    assert works[-1] >= 0.8
