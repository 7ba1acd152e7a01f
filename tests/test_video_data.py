"""Video data: synthetic UCF101-layout videos read back through decord, clip sampling, errors."""
import shutil

import pytest
import torch

from sparse_zoo.corruptions.video import ClipCorruption
from sparse_zoo.data import DatasetNotFoundError
from sparse_zoo.data import video as V
from sparse_zoo.data.synthetic_video import make_synthetic_ucf101, render

RAW = V.ClipTransform(size=None, short_side=None, flip=False)  # decoded frames as they are
ACTS = ("MoveUp", "MoveDown", "Orbit")


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    return make_synthetic_ucf101(tmp_path_factory.mktemp("ucf"), groups=3, clips_per_group=1, frames=24, size=32,
                                 actions=ACTS)


def test_layout_and_splits(ucf):
    assert (ucf / "ucfTrainTestlist" / "classInd.txt").read_text() == "1 MoveUp\n2 MoveDown\n3 Orbit\n"
    videos = sorted(p.relative_to(ucf / "UCF-101").as_posix() for p in (ucf / "UCF-101").rglob("*.avi"))
    assert len(videos) == 9 and "Orbit/v_Orbit_g02_c01.avi" in videos
    for split in (1, 2, 3):
        train = V.UCF101(ucf, ucf, split, train=True)
        test = V.UCF101(ucf, ucf, split, train=False)
        assert len(train) == 6 and len(test) == 3
        assert {p for p, _ in train.samples}.isdisjoint({p for p, _ in test.samples})
        assert all(f"_g{split:02d}_" in p for p, _ in test.samples)  # split s tests on group s
        assert all(ACTS[label] in path for path, label in train.samples + test.samples)


def test_decoded_frames_match_the_rendered_video(ucf):
    ds = V.UCF101(ucf, ucf, 1, train=False, frames=24, stride=1, transform=RAW)
    path, label = ds.samples[0]
    clip, got = ds[0]
    assert got == label and clip.shape == (3, 24, 32, 32) and clip.dtype == torch.uint8
    # rebuild the video from its generator seed, as make_synthetic_ucf101 did (group 1, clip 1)
    ref, other = (render(ACTS[label], frames=24, size=32, generator=torch.Generator().manual_seed(s))
                  .permute(3, 0, 1, 2).float() for s in (label * 3 * 1 + 1, 1234))
    error = (clip.float() - ref).abs().mean()
    assert error < 6 and (clip.float() - other).abs().mean() > 3 * error  # H.264 at CRF 18, yuv420p


def test_eval_clips_uniformly_spaced_and_deterministic(ucf):
    ds = V.UCF101(ucf, ucf, 1, train=False, frames=4, stride=2, num_clips=3, transform=RAW)
    # span 7 in 24 frames: interval (24 - 7 + 1) / 3 = 6, starts 3, 9, 15
    assert ds.clip_indices(0, 24).tolist() == [[3, 5, 7, 9], [9, 11, 13, 15], [15, 17, 19, 21]]
    a, b = ds[1][0], ds[1][0]
    assert a.shape == (3, 3, 4, 32, 32) and torch.equal(a, b)
    single = V.UCF101(ucf, ucf, 1, train=False, frames=4, stride=2, transform=RAW)
    assert single.clip_indices(0, 24).tolist() == [[9, 11, 13, 15]]  # the centre clip


def test_short_videos_loop():
    sampler = V.ClipSampler(frames=8, stride=2)
    assert sampler.positions(10, sampler.eval_starts(10))[0].tolist() == [0, 2, 4, 6, 8, 0, 2, 4]


def test_train_clips_start_at_random_within_the_video(ucf):
    ds = V.UCF101(ucf, ucf, 1, train=True, frames=4, stride=2)
    torch.manual_seed(0)
    starts = {int(ds.clip_indices(0, 24)[0, 0]) for _ in range(300)}
    assert starts == set(range(0, 24 - 7 + 1))


def test_transform_geometry_and_normalisation(ucf):
    t = V.ClipTransform(size=24, short_side=28, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    ds = V.UCF101(ucf, ucf, 1, train=True, frames=4, transform=t)
    clip, _ = ds[0]
    assert clip.shape == (3, 4, 24, 24) and clip.dtype == torch.float32
    raw = torch.full((2, 3, 10, 10), 255, dtype=torch.uint8)
    assert torch.allclose(V.ClipTransform(size=None, short_side=None, mean=(0.5,) * 3, std=(0.25,) * 3)(raw, False),
                          torch.full((3, 2, 10, 10), 2.0))


def test_temporal_corruption_rewrites_indices_before_decoding(ucf):
    clean = V.UCF101(ucf, ucf, 1, train=False, frames=6, stride=1, transform=RAW)
    rev = V.UCF101(ucf, ucf, 1, train=False, frames=6, stride=1, transform=RAW,
                   corruption=ClipCorruption("reverse_sampling", 1))
    # the corrupted video is frames 22, 20, ..., 0 (12 frames); its centre clip starts at 3
    assert rev.clip_indices(2, 24).tolist() == [[16, 14, 12, 10, 8, 6]]
    path = rev.samples[2][0]
    expected = V.read_frames(path, lambda n: torch.tensor([16, 14, 12, 10, 8, 6])).permute(3, 0, 1, 2)
    assert torch.equal(rev[2][0], expected)
    assert not torch.equal(rev[2][0], clean[2][0])


def test_spatial_corruption_at_decode_time(ucf):
    clean = V.UCF101(ucf, ucf, 1, train=False, frames=4, transform=RAW)
    hook = ClipCorruption("translate", 3, seed=2)
    corrupted = V.UCF101(ucf, ucf, 1, train=False, frames=4, transform=RAW, corruption=hook)
    for i in range(len(clean)):
        expected = hook.frames(clean[i][0].transpose(0, 1), i).transpose(0, 1)
        assert torch.equal(corrupted[i][0], expected)


@pytest.fixture()
def broken(ucf, tmp_path):
    root = tmp_path / "ucf"
    shutil.copytree(ucf, root)
    bad = root / "UCF-101" / "Orbit" / "v_Orbit_g01_c01.avi"
    bad.write_bytes(b"not a video" * 50)
    return root, str(bad)


def test_unreadable_video_raises_with_its_path(broken):
    root, bad = broken
    ds = V.UCF101(root, root, 1, train=False, frames=4)
    index = next(i for i, (p, _) in enumerate(ds.samples) if p == bad)
    with pytest.raises(V.VideoDecodeError, match="v_Orbit_g01_c01.avi") as err:
        ds[index]
    assert err.value.path == bad
    assert ds.scan() == [bad]


def test_unreadable_video_skipped_on_request(broken):
    root, bad = broken
    ds = V.UCF101(root, root, 1, train=False, frames=4, on_error="skip")
    with pytest.warns(RuntimeWarning, match="v_Orbit_g01_c01.avi"):
        items = [ds[i] for i in range(len(ds))]
    assert sum(item is None for item in items) == 1 and ds.failed == [bad]
    clips, labels = V.video_collate(items)
    assert clips.shape[0] == len(ds) - 1 and labels.tolist() == [x[1] for x in items if x is not None]
    assert V.video_collate([None]) is None


def test_missing_files_and_layout(ucf, tmp_path):
    root = tmp_path / "ucf"
    shutil.copytree(ucf, root)
    (root / "UCF-101" / "MoveUp" / "v_MoveUp_g02_c01.avi").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 6 videos"):
        V.UCF101(root, root, 1, train=True)
    with pytest.warns(RuntimeWarning, match="missing"):
        assert len(V.UCF101(root, root, 1, train=True, on_error="skip")) == 5
    with pytest.raises(DatasetNotFoundError, match="classInd.txt"):
        V.UCF101(root, tmp_path / "nowhere", 1)
    with pytest.raises(DatasetNotFoundError, match="Expected layout"):
        V.VideoFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="split must be 1, 2 or 3"):
        V.UCF101(root, root, 4)
    with pytest.raises(ValueError, match="on_error"):
        V.UCF101(root, root, 1, on_error="ignore")


def test_video_folder_and_open_videos(ucf, tmp_path):
    folder = V.VideoFolder(ucf / "UCF-101", train=False, frames=4)
    assert folder.classes == sorted(ACTS) and len(folder) == 9
    assert folder[0][0].shape == (3, 4, 112, 112)  # default geometry: short side 128, centre crop 112
    assert isinstance(V.open_videos(ucf, train=True), V.UCF101)
    for split in ("train", "test"):
        shutil.copytree(ucf / "UCF-101", tmp_path / "kinetics" / split)
    assert isinstance(V.open_videos(tmp_path / "kinetics", train=False), V.VideoFolder)


def test_deferred_clips_decode_under_the_callers_seed(ucf):
    deferred = V.DeferredClips(V.UCF101(ucf, ucf, 1, train=True, frames=4, transform=V.ClipTransform(24, 28)))
    loader, label = deferred[3]
    assert label == deferred.dataset.samples[3][1] and deferred.classes == list(ACTS)
    clips = []
    for _ in range(2):
        torch.manual_seed(11)
        clips.append(V.NormalizedClip((0.5,) * 3, (0.5,) * 3)(loader))
    assert torch.equal(clips[0], clips[1]) and clips[0].shape == (3, 4, 24, 24)


def test_clip_logits_average_over_clips():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 2 * 4 * 4, 5))
    clips = torch.randn(2, 3, 3, 2, 4, 4)
    expected = torch.stack([model(clips[:, k]) for k in range(3)]).mean(0)
    assert torch.allclose(V.clip_logits(model, clips), expected, atol=1e-6)
    assert torch.equal(V.clip_logits(model, clips[:, 0]), model(clips[:, 0]))


@pytest.mark.parametrize("action,shift", [("MoveDown", (2, 0)), ("MoveUp", (-2, 0)), ("SlideFast", (0, 3)),
                                          ("SlideSlow", (0, 1))])
def test_synthetic_motion_is_an_exact_shift(action, shift):
    video = render(action, frames=6, size=32, generator=torch.Generator().manual_seed(5))
    values, counts = torch.unique(video[0].reshape(-1, 3), dim=0, return_counts=True)
    colour = values[counts.argmax()]  # the flat-coloured shape is the most frequent colour
    mask = (video == colour).all(-1)
    assert 40 <= mask[0].sum() <= 300
    steps = [s for s in ((shift[0], shift[1]), (shift[0], -shift[1]))  # slides go either way
             if all(torch.equal(torch.roll(mask[t], s, dims=(0, 1)), mask[t + 1]) for t in range(5))]
    assert steps


def test_spatial_corruption_after_resize_before_crop(ucf):
    geometry = V.ClipTransform(size=24, short_side=28, flip=False)
    hook = ClipCorruption("gaussian_noise", 2, seed=0)
    raw = V.UCF101(ucf, ucf, 1, train=False, frames=4, transform=RAW)
    corrupted = V.UCF101(ucf, ucf, 1, train=False, frames=4, transform=geometry, corruption=hook)
    resized = geometry.resize(raw[0][0].transpose(0, 1))
    assert resized.shape[-2:] == (28, 28) and resized.dtype == torch.uint8
    assert torch.equal(corrupted[0][0], geometry.finish(hook.frames(resized, 0), False))


def test_ucf101_c_suite_of_the_harness(ucf):
    from sparse_zoo.bench.suites import get_suite

    data = get_suite("ucf101-c").open(ucf)
    assert data.source == "onthefly" and data.classes == list(ACTS) and len(data.clean) == 3
    clip, label = data.cell("reverse_sampling", 2, 0)[0]
    assert clip.shape == (3, 16, 112, 112) and clip.dtype == torch.uint8
    assert data.cell("jumble", 1, 7).corruption == ClipCorruption("jumble", 1, seed=7)
    with pytest.raises(ValueError, match="decode time"):
        get_suite("ucf101-c").open(ucf, source="prerendered")
