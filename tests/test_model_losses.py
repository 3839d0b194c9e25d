"""The loss terms and the documented content-loss fallback."""
import torch

from livingportrait_backend.model.losses import (ContentLoss, LossConfig, adversarial_generator, embedding_match,
                                                 feature_matching, hinge_discriminator)


def test_hinge_is_zero_only_beyond_the_margins():
    assert hinge_discriminator(torch.tensor([2.0, 1.0]), torch.tensor([-1.0, -3.0])) == 0
    torch.testing.assert_close(hinge_discriminator(torch.tensor([0.0]), torch.tensor([0.5])), torch.tensor(2.5))


def test_generator_terms():
    torch.testing.assert_close(adversarial_generator(torch.tensor([1.0, 3.0])), torch.tensor(-2.0))
    real = [torch.ones(2, 3), torch.zeros(2, 4)]
    fake = [torch.zeros(2, 3, requires_grad=True), torch.ones(2, 4, requires_grad=True)]
    loss = feature_matching(real, fake)
    torch.testing.assert_close(loss, torch.tensor(2.0))
    loss.backward()
    assert fake[0].grad is not None
    torch.testing.assert_close(embedding_match(torch.zeros(2, 4), torch.full((2, 4), 0.5)), torch.tensor(0.5))


def test_content_loss_without_perceptual_nets_falls_back_to_pixel_l1():
    cfg = LossConfig()
    loss = ContentLoss(cfg, None, None)
    assert loss.uses_fallback
    terms = loss(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5))
    assert set(terms) == {"pixel"}
    torch.testing.assert_close(terms["pixel"], torch.tensor(0.5 * cfg.fallback_pixel_weight))
