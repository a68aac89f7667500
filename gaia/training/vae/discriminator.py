"""PatchGAN discriminator for the VAE's adversarial loss (paper, section 4.1; the patch
discriminator of pix2pix as used by latent-diffusion's LPIPSWithDiscriminator).

Image (B, 3, S, S) in [-1, 1] -> logits (B, 1, S', S'), one per overlapping patch: a 4x4
stride-2 conv, ``layers - 1`` more stride-2 convs doubling the width (at most 8x), one stride-1
conv, and a 4x4 conv to one channel. With 3 layers on 256 x 256 images that is a 30 x 30 grid
of 70-pixel patches.

Normalisation: GroupNorm by default rather than latent-diffusion's BatchNorm, so a sample's
logits do not depend on the rest of its batch (large VAEs train with one or two frames per
GPU). ``spectral_norm=True`` wraps every conv in spectral normalisation (then ``norm="none"``
is the usual choice).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gaia.training.vae.config import VaeConfig


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(32, channels // 4), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 3,
                 norm: str = "group", spectral_norm: bool = False) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("a patch discriminator needs at least one layer")

        def conv(cin: int, cout: int, stride: int, bias: bool) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=bias)
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if bias:
                nn.init.zeros_(layer.bias)
            return _spectral_norm(layer) if spectral_norm else layer

        has_norm = norm != "none"
        blocks: list[nn.Module] = [conv(in_channels, channels, 2, True), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, layers + 1):
            out = channels * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            blocks += [conv(width, out, stride, not has_norm), _norm(norm, out),
                       nn.LeakyReLU(0.2)]
            width = out
        blocks.append(conv(width, 1, 1, True))
        self.net = nn.Sequential(*blocks)

    @classmethod
    def from_config(cls, config: VaeConfig) -> PatchDiscriminator:
        return cls(3, config.disc_channels, config.disc_layers, config.disc_norm,
                   config.disc_spectral_norm)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)
