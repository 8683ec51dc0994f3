import torch

from impasto.metrics import lattice_peaks

from .conftest import EXAMPLES


def test_lattice_peaks_find_a_grid_and_not_a_painting():
    from impasto.io.image import load_image
    from impasto.ops.geometry import resize

    clean = resize(load_image(EXAMPLES / "wave.jpg").rgb, (256, 256))
    yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    grid2 = ((yy % 2) ^ (xx % 2)).float() * 0.08  # a faint 2-pixel checkerboard
    grid4 = ((yy // 2 % 2) ^ (xx // 2 % 2)).float() * 0.08  # and one of 4 pixels
    base = lattice_peaks(clean[0])
    assert base[2] < 8 and base[4] < 8, base
    assert lattice_peaks((clean + grid2).clamp(0, 1)[0])[2] > 5 * base[2]
    assert lattice_peaks((clean + grid4).clamp(0, 1)[0])[4] > 5 * base[4]
