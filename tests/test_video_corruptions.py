"""Video corruptions: index patterns by hand, per-clip reproducibility, reference tables."""
import numpy as np
import pytest
import torch
from PIL import Image

from sparse_zoo import corruptions
from sparse_zoo.corruptions import video as V

TEMPORAL = ("sampling", "reverse_sampling", "jumble", "box_jumble", "freeze")


def _engine_has(name):
    try:
        corruptions.get(name)
    except ValueError:
        return False
    return True


def _frame_index_clip(b=2, t=8, h=4, w=5):
    """uint8 clips whose frame t is filled with the value t: the output reveals the indices."""
    return torch.arange(t, dtype=torch.uint8).view(1, 1, t, 1, 1).expand(b, 3, t, h, w).contiguous()


def test_names_and_severities():
    assert V.video_names() == corruptions.names("video") and len(V.video_names()) == 16
    assert V.video_names(extra=True)[-1] == "compression_h264"
    for name in V.video_names(extra=True):
        c = V.get_video(name)
        assert c.temporal == (name in TEMPORAL)
        assert c.severities == ((1, 2, 3, 4, 5, 6) if name == "static_rotate" else (1, 2, 3, 4, 5))


def test_temporal_tables_match_reference_formulas():
    assert V.get_video("sampling").table == (2, 4, 8, 16, 32)
    assert V.get_video("jumble").table == (32, 16, 8, 4, 2)  # 64 // 2**s
    assert V.get_video("box_jumble").table == (4, 9, 16, 25, 36)  # (s + 1)**2
    assert V.get_video("static_rotate").table == (7.5, 15, 30, 45, 90, 180)
    assert V.H264_CRF == (38, 42, 43, 46, 47)


def test_sampling_and_reverse_by_hand():
    assert V.temporal_sequences(20, "sampling", 2)[0].tolist() == [0, 4, 8, 12, 16]
    assert V.temporal_sequences(20, "reverse_sampling", 2)[0].tolist() == [16, 12, 8, 4, 0]
    assert V.temporal_sequences(20, "sampling", 5)[0].tolist() == [0]
    assert V.temporal_sequences(33, "reverse_sampling", 4)[0].tolist() == [32, 16, 0]


def test_jumble_shuffles_within_segments():
    seq = V.temporal_sequences(20, "jumble", 3, seed=1, sample_ids=[4])[0]  # segments of 8
    assert sorted(seq[:8].tolist()) == list(range(8))
    assert sorted(seq[8:16].tolist()) == list(range(8, 16))
    assert sorted(seq[16:].tolist()) == list(range(16, 20))
    assert seq.tolist() != list(range(20))


def test_box_jumble_moves_whole_segments():
    seq = V.temporal_sequences(10, "box_jumble", 1, seed=3, sample_ids=[0])[0].tolist()  # segments of 4
    blocks = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    rebuilt, rest = [], list(seq)
    while rest:
        block = next(b for b in blocks if rest[:len(b)] == b)
        rebuilt.append(block)
        rest = rest[len(block):]
    assert sorted(map(tuple, rebuilt)) == sorted(map(tuple, blocks))
    orders = {tuple(V.temporal_sequences(10, "box_jumble", 1, seed=3, sample_ids=[i])[0].tolist()) for i in range(20)}
    assert len(orders) > 1


@pytest.mark.parametrize("severity,k", [(1, 40), (2, 20), (3, 10), (4, 5), (5, 1)])
def test_freeze_holds_k_frames(severity, k):
    n = 100
    seq = V.temporal_sequences(n, "freeze", severity, seed=0, sample_ids=[7])[0].tolist()
    kept = sorted(set(seq))
    assert len(kept) == k
    expected = []  # the reference: each kept frame repeats until the next, the last until the end
    for i, f in enumerate(kept):
        expected += [f] * ((kept[i + 1] if i + 1 < k else n) - f)
    assert seq == expected and len(seq) == n - kept[0]


def test_freeze_level4_has_at_least_two_frames():
    assert len(set(V.temporal_sequences(20, "freeze", 4)[0].tolist())) == 2  # max(.05 * 20, 2)


def test_apply_video_temporal_loops_over_the_sequence():
    clips = _frame_index_clip(t=8)
    out = V.apply_video(clips, "sampling", 1)
    assert out[0, 0, :, 0, 0].tolist() == [0, 2, 4, 6, 0, 2, 4, 6]
    out = V.apply_video(clips, "reverse_sampling", 2)
    assert out[1, 2, :, 3, 4].tolist() == [4, 0] * 4
    assert out.dtype == torch.uint8 and out.shape == clips.shape


@pytest.mark.parametrize("name", ["jumble", "box_jumble", "freeze", "rotate", "translate"])
def test_per_clip_reproducible_whatever_the_batch(name):
    g = torch.Generator().manual_seed(0)
    clips = torch.rand(3, 3, 12, 16, 16, generator=g)
    both = V.apply_video(clips, name, 2, seed=5, sample_ids=[10, 11, 12])
    alone = V.apply_video(clips[2:], name, 2, seed=5, sample_ids=[12])
    assert torch.equal(both[2], alone[0])
    other = V.apply_video(clips[2:], name, 2, seed=6, sample_ids=[12])
    assert not torch.equal(other[0], alone[0])


def _pil_rotate(x, deg):
    return torch.stack([torch.from_numpy(np.array(Image.fromarray(f.permute(1, 2, 0).numpy()).rotate(deg)))
                        .permute(2, 0, 1) for f in x])


def test_rotate_frames_matches_pil():
    x = torch.randint(0, 256, (2, 3, 17, 23), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for deg in (90.0, 180.0, 7.5):
        assert torch.equal(V.rotate_frames(x, torch.full((2,), deg)), _pil_rotate(x, deg))
    agree = (V.rotate_frames(x, torch.full((2,), 30.0)) == _pil_rotate(x, 30.0)).float().mean()
    assert agree > 0.95  # nearest-neighbour ties at a few pixels


def test_static_rotate_same_angle_every_frame():
    clips = torch.randint(0, 256, (1, 3, 4, 12, 12), dtype=torch.uint8)
    out = V.apply_video(clips, "static_rotate", 6)
    assert torch.equal(out, clips.flip(-1).flip(-2))  # level 6 = 180 degrees on a square frame


def test_rotate_uses_one_integer_angle_per_frame_in_range():
    frame = torch.randint(0, 256, (3, 15, 15), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    clips = frame.view(1, 3, 1, 15, 15).expand(1, 3, 10, 15, 15).contiguous()
    out = V.apply_video(clips, "rotate", 1, seed=0, sample_ids=[3])[0].transpose(0, 1)
    candidates = {a: V.rotate_frames(frame[None], torch.tensor([float(a)]))[0] for a in range(-7, 8)}
    angles = []
    for f in out:
        matches = [a for a, c in candidates.items() if torch.equal(c, f)]
        assert matches
        angles.append(matches[0])
    assert len(set(angles)) > 1  # camera shake: the angle changes between frames


def test_translate_shifts_every_frame_by_one_offset():
    ramp = torch.arange(40 * 40, dtype=torch.float32).view(40, 40) / 1600
    clips = ramp.expand(2, 3, 5, 40, 40).contiguous()
    out = V.apply_video(clips, "translate", 3, seed=0, sample_ids=[0, 1])
    for clip_in, clip_out in zip(clips, out):
        v = clip_out[0, 0, 0, 0].item()  # the source pixel now at the origin
        dy, dx = divmod(round(v * 1600), 40)
        assert 0 <= dy < 24 and 0 <= dx < 24
        assert torch.equal(clip_out[..., : 40 - dy, : 40 - dx], clip_in[..., dy:, dx:])
        assert (clip_out[..., 40 - dy:, :] == 0).all() and (clip_out[..., 40 - dx:] == 0).all()


def _texture(t=6, h=31, w=33):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    base = torch.stack([(x * 7 + y * 3) % 256, (x * y) % 256, (y * 11) % 256]).to(torch.uint8)
    return torch.stack([base.roll(i, -1) for i in range(t)], 1)[None]  # (1, 3, T, H, W)


def test_h264_compression_odd_sizes_and_monotone():
    clips = _texture()
    errors = []
    for s in range(1, 6):
        out = V.apply_video(clips, "compression_h264", s)
        assert out.shape == clips.shape and out.dtype == torch.uint8
        assert torch.equal(out, V.apply_video(clips, "compression_h264", s))
        errors.append((out.float() - clips.float()).pow(2).mean().item())
    assert errors[0] > 0 and errors == sorted(errors)
    as_float = V.apply_video(clips.float() / 255, "compression_h264", 2)
    assert as_float.dtype == torch.float32 and torch.allclose(as_float * 255, V.apply_video(clips, "compression_h264", 2).float())


REFERENCE_TABLES = {  # core/video_perturb.py of Maddy12/ActionRecognitionRobustnessEval
    "gaussian_noise": [.08, .12, .18, .26, .38],
    "shot_noise": [250, 100, 50, 30, 15],
    "impulse_noise": [.03, .06, .09, .17, .27],
    "speckle_noise": [.15, .2, .25, .3, .35],
    "compression": [25, 18, 15, 10, 7],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
}


@pytest.mark.parametrize("name", sorted(REFERENCE_TABLES))
def test_image_engine_tables_equal_the_reference(name):
    image_name, resolution = V.get_video(name).fn.image
    if not _engine_has(image_name):
        pytest.skip(f"image corruption {image_name} not implemented yet")
    table = corruptions.get(image_name).tables[resolution]
    for ours, ref in zip(table, REFERENCE_TABLES[name]):
        flat = np.asarray(ours, dtype=float).reshape(-1)[: np.size(ref)]
        assert np.allclose(flat, np.asarray(ref, dtype=float).reshape(-1)), (name, table)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                                  "compression", "defocus_blur", "motion_blur", "zoom_blur"])
def test_per_frame_corruptions_reuse_the_image_engine(name):
    image_name, resolution = V.get_video(name).fn.image
    if not _engine_has(image_name):
        pytest.skip(f"image corruption {image_name} not implemented yet")
    clips = _texture(t=3, h=24, w=24).expand(2, 3, 3, 24, 24).contiguous()
    out = V.apply_video(clips, name, 3, seed=9, sample_ids=[4, 5])
    frames = clips.transpose(1, 2).flatten(0, 1)
    ids = [(c << 16) + t for c in (4, 5) for t in range(3)]
    ref = corruptions.apply(frames, image_name, 3, seed=9, sample_ids=ids, resolution=resolution)
    assert torch.equal(out, ref.view(2, 3, 3, 24, 24).transpose(1, 2))
    assert not torch.equal(out, clips)


def test_noise_differs_between_frames_of_a_clip():
    if not _engine_has("gaussian_noise"):
        pytest.skip("image corruption gaussian_noise not implemented yet")
    clips = torch.full((1, 3, 4, 16, 16), 0.5)
    out = V.apply_video(clips, "gaussian_noise", 2)
    assert not torch.equal(out[:, :, 0], out[:, :, 1])


def test_clip_corruption_hook():
    hook = V.ClipCorruption("reverse_sampling", 1, seed=0)
    assert hook.temporal and hook.sequence(6, 0).tolist() == [4, 2, 0]
    clip = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8)
    assert torch.equal(hook.frames(clip, 0), clip)
    spatial = V.ClipCorruption("translate", 2, seed=1)
    assert spatial.sequence(6, 0).tolist() == list(range(6))
    assert torch.equal(spatial.frames(clip, 3), V.apply_video(clip.transpose(0, 1)[None], "translate", 2, seed=1,
                                                              sample_ids=[3])[0].transpose(0, 1))


def test_bad_input():
    with pytest.raises(ValueError, match="valid: motion_blur"):
        V.get_video("blur")
    with pytest.raises(ValueError, match=r"severity must be an integer in \[1, 2, 3, 4, 5\]"):
        V.apply_video(torch.zeros(1, 3, 4, 8, 8), "sampling", 6)
    with pytest.raises(ValueError, match="severity"):
        V.ClipCorruption("jumble", 0)
    V.ClipCorruption("static_rotate", 6)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        V.apply_video(torch.zeros(3, 4, 8, 8), "jumble", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.apply_video(torch.full((1, 3, 4, 8, 8), 2.0), "jumble", 1)
    with pytest.raises(ValueError, match="sample_ids"):
        V.apply_video(torch.zeros(2, 3, 4, 8, 8), "jumble", 1, sample_ids=[1])
