import matplotlib

matplotlib.use("Agg")

import torch
from PIL import Image

from helpers.plots import show_images


def test_show_images_draws_one_titled_panel_per_image_and_hides_the_rest():
    images = [torch.rand(1, 28, 28), torch.rand(28, 28), Image.new("L", (28, 28))]
    fig = show_images(images, ["a", "b", "c"], "three images", ncols=2)
    axes = fig.axes
    assert len(axes) == 4  # 2 x 2 grid
    assert [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"]
    assert [len(ax.images) for ax in axes] == [1, 1, 1, 0]
    assert axes[0].images[0].get_array().shape == (28, 28)  # the channel dimension was squeezed
    assert fig._suptitle.get_text() == "three images"
