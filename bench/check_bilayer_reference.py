"""Proof of equality without the published weights: our bi-layer networks vs the publisher's code.

    PYTHONPATH=. python bench/check_bilayer_reference.py --reference /path/to/bilayer-model

DIR is a checkout of the publisher's public code (github saic-violet/bilayer-model), kept OUTSIDE this
project. The script builds the publisher's five inference networks through its own runner
(``training=False``, CPU), gives them random weights (spectral-norm u/v made consistent by power
iteration, random batch-norm statistics, as a trained checkpoint would have), saves their state dicts in
the publisher's own layout with an args.txt as its training script writes it, converts them with OUR
converter, runs both on the same inputs and prints the largest absolute difference per network, for
the per-identity stage and for the whole per-frame path (image + landmarks in, RGB + segmentation out).

Stand-ins, because they cannot run here: face-alignment (its landmarks are given instead), Graphonomy
(a fixed foreground mask is given to both sides as the source segmentation) and torchvision's ToTensor
(PIL -> float CHW / 255, its documented behaviour). Everything else is the publisher's code unchanged.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

NETS = ["identity_embedder", "texture_generator", "keypoints_embedder", "inference_generator", "texture_enhancer"]


def reference_args(ref: Path) -> argparse.Namespace:
    """The publisher's options for the published enhancer model (its README's inference settings)."""
    p = argparse.ArgumentParser(conflict_handler="resolve")
    p.add = p.add_argument
    for n in NETS:
        importlib.import_module(f"networks.{n}").NetworkWrapper.get_args(p)
    a = p.parse_args([])
    over = dict(eps=1e-7, image_size=256, num_source_frames=1, num_target_frames=1, num_gpus=0,
                output_stickmen=True, stickmen_thickness=2, folder_postfix="2d_crop", num_keypoints=68,
                pse_in_channels=136, pse_emb_source_pose=True, pse_use_harmonic_enc=False,
                inf_pred_source_data=True, enh_apply_masks=False, inf_apply_masks=False,
                networks_test=", ".join(NETS), networks_train=", ".join(NETS), networks_to_train="",
                networks_calc_stats="", spn_networks=", ".join(NETS), spn_layers="conv2d, linear",
                spn_exceptions="", wgv_mode="none", losses_test="", losses_train="", rank=0, world_size=1,
                runner_name="default", which_epoch="none", init_which_epoch="none", init_experiment_dir="",
                init_networks="")
    for k, v in over.items():
        setattr(a, k, v)
    return a


@torch.no_grad()
def randomise(runner: torch.nn.Module, gen: torch.Generator) -> None:
    """Trained-looking random weights: consistent spectral-norm vectors, non-trivial BN statistics."""
    for m in runner.modules():
        if hasattr(m, "weight_u") and hasattr(m, "weight_orig"):
            w = m.weight_orig.reshape(m.weight_orig.shape[0], -1)
            u, v = m.weight_u, m.weight_v
            for _ in range(30):
                v.copy_(torch.nn.functional.normalize(w.t() @ u, dim=0))
                u.copy_(torch.nn.functional.normalize(w @ v, dim=0))
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.affine:
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    for name, p in runner.named_parameters():
        if name.endswith(("pixel_feats", "gen_tex_input")):
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 if "pixel" in name else 1.0))


def write_runs(runner, args, root: Path) -> list[Path]:
    """The publisher's layout: runs/<exp>/args.txt and runs/<exp>/checkpoints/<epoch>_<net>.pth."""
    runs = [root / "runs" / "main", root / "runs" / "enhancer"]
    for run, epoch, nets in ((runs[0], 2225, NETS[:4]), (runs[1], 1225, NETS[4:])):
        (run / "checkpoints").mkdir(parents=True)
        with open(run / "args.txt", "wt") as f:
            for k, v in sorted(vars(args).items()):
                f.write("%s: %s\n" % (k, v))
        for n in nets:
            torch.save(runner.nets[n].state_dict(), run / "checkpoints" / f"{epoch}_{n}.pth")
    return runs


def install_stand_ins(landmark_queue: list, mask: torch.Tensor) -> None:
    """face_alignment, torchvision.transforms and the Graphonomy wrapper as the reference's infer.py
    imports them (see the module docstring)."""
    fa = types.ModuleType("face_alignment")

    class FaceAlignment:
        def __init__(self, *a, **k):
            pass

        def get_landmarks(self, image):
            return [landmark_queue.pop(0).astype(np.float32)]

    fa.FaceAlignment = FaceAlignment
    fa.LandmarksType = types.SimpleNamespace(_2D=None)
    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")

    class ToTensor:
        def __call__(self, img):
            return torch.from_numpy(np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0)

    tr.ToTensor = ToTensor
    tv.transforms = tr
    seg = types.ModuleType("external.Graphonomy.wrapper")
    seg.SegmentationWrapper = None
    sys.modules.update({"face_alignment": fa, "torchvision": tv, "torchvision.transforms": tr,
                        "external.Graphonomy.wrapper": seg})
    importlib.import_module("external.Graphonomy").wrapper = seg


def fixed_mask(size: int) -> torch.Tensor:
    """An elliptical soft foreground mask (1, 1, S, S): the stand-in source segmentation."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.sigmoid(8 * (1 - (x / 0.7) ** 2 - ((y - 0.1) / 0.9) ** 2))[None, None]


def maxdiff(a, b) -> float:
    if isinstance(a, (list, tuple)):
        return max(maxdiff(x, y) for x, y in zip(a, b))
    return float((a.double() - b.double()).abs().max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="a checkout of github saic-violet/bilayer-model")
    ap.add_argument("--frames", type=int, default=4, help="target frames in the per-frame comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures to this file")
    opts = ap.parse_args()
    ref = Path(opts.reference).resolve()
    sys.path.insert(0, str(ref))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    import subprocess

    commit = subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    from livingportrait_backend.model.bilayer import convert_runs, load_converted
    from livingportrait_backend.model.bilayer import inputs as bi
    from livingportrait_backend.landmarks.performance import builtin_performance

    mask = fixed_mask(256)
    queue: list = []
    install_stand_ins(queue, mask)
    import warnings

    warnings.filterwarnings("ignore")
    from runners import utils as rn_utils
    from runners.default import RunnerWrapper

    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    args = reference_args(ref)
    runner = RunnerWrapper(args, training=False)
    randomise(runner, gen)
    runner.eval()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = write_runs(runner, args, Path(tmp))
        convert_runs([str(r) for r in runs], str(Path(tmp) / "converted"))
        ours = load_converted(str(Path(tmp) / "converted"))
    runner.apply(rn_utils.remove_spectral_norm)  # as the publisher's inference does after loading

    # ---- per network, same inputs ----
    S = 256
    g = torch.Generator().manual_seed(opts.seed + 1)
    x = torch.rand(1, 1, 6, S, S, generator=g) * 2 - 1
    kp = torch.rand(1, 3, 136, generator=g) * 1.6 - 0.8
    with torch.no_grad():
        ref_emb = runner.nets["identity_embedder"].net(x)
        our_emb = ours.identity_embedder(x[:, 0])
        results["identity_embedder"] = maxdiff(ref_emb, our_emb)
        d = {"source_idt_embeds": ref_emb}
        runner.nets["texture_generator"](d, [], runner.nets)
        results["texture_generator"] = maxdiff(d["pred_tex_hf_rgbs"][:, 0], ours.texture_generator(ref_emb))
        ref_pose = runner.nets["keypoints_embedder"].net(kp[0])
        our_pose = ours.keypoints_embedder(kp[0])
        results["keypoints_embedder"] = maxdiff(ref_pose, our_pose)
        d.update(target_poses=kp, source_poses=kp[:, :1], source_imgs=x[:, :, :3])
        runner.nets["keypoints_embedder"](d, [], runner.nets)
        runner.nets["inference_generator"](d, [], runner.nets)
        ours.inference_generator.personalise(ref_emb)
        uv, lf, seg = ours.inference_generator(ref_pose)
        results["inference_generator"] = max(maxdiff(d["pred_target_uvs"][0], uv),
                                             maxdiff(d["pred_target_delta_lf_rgbs"][0], lf),
                                             maxdiff(d["pred_target_segs"][0], torch.sigmoid(seg)))
        results["texture_warp"] = maxdiff(d["pred_target_delta_hf_rgbs"][0],
                                          ours_warp(d["pred_tex_hf_rgbs"][:, 0], d["pred_target_uvs"][0]))
        runner.nets["texture_enhancer"](d, [], runner.nets)
        enh = ours.texture_enhancer(d["pred_tex_hf_rgbs"][:, 0], x[:, 0, :3], d["pred_source_uvs"][:, 0],
                                    d["pred_source_delta_lf_rgbs"][:, 0], d["pred_source_segs"][:, 0])
        results["texture_enhancer"] = maxdiff(d["pred_enh_tex_hf_rgbs"][:, 0], enh)

    # ---- the whole path: image + landmarks in, RGB + segmentation out ----
    from skimage import data as skdata

    image = skdata.astronaut()
    perf = builtin_performance().landmarks
    source_pts, target_pts = perf[0], perf[1:1 + opts.frames]
    infer = importlib.import_module("infer")
    wrapper = infer.InferenceWrapper.__new__(infer.InferenceWrapper)
    torch.nn.Module.__init__(wrapper)
    wrapper.args, wrapper.runner = args, runner
    wrapper.to_tensor = sys.modules["torchvision.transforms"].ToTensor()
    wrapper.fa = sys.modules["face_alignment"].FaceAlignment()
    wrapper.net_seg = lambda imgs: mask.expand(imgs.shape[1], 1, S, S)
    queue.extend([source_pts] + list(target_pts))
    out = wrapper({"source_imgs": image, "target_imgs": np.stack([image] * len(target_pts))})
    ref_rgb, ref_seg = out["pred_enh_target_imgs"][0], out["pred_target_segs"][0]
    ref_tex = out["pred_enh_tex_hf_rgbs"][0, :1]

    box = bi.crop_box(source_pts)
    src = torch.from_numpy(bi.crop_image(image, box, S))[None]
    src_kp = bi.keypoints(source_pts, box)
    stick = torch.from_numpy(bi.stickman(src_kp, S, 2))[None]
    results["stickman"] = maxdiff(out["source_stickmen"][0], stick)
    results["source_crop"] = maxdiff(out["source_imgs"][0], src)
    ident = ours.identity(src, mask, stick, torch.from_numpy(src_kp)[None])
    results["per_identity_stage"] = maxdiff(ref_tex, ident.texture)
    tkp = np.stack([bi.keypoints(p, bi.crop_box(p)) for p in target_pts])  # the publisher's per-frame crop
    with torch.no_grad():
        rgb, seg = ours.frames(torch.from_numpy(tkp), ident.texture)
    results["per_frame_path_rgb"] = maxdiff(ref_rgb, rgb)
    results["per_frame_path_segmentation"] = maxdiff(ref_seg, seg)
    with torch.no_grad():  # the engine's folded per-frame path (frame_path.py)
        frgb, fseg = ours.frame_path(ident.texture)(torch.from_numpy(tkp))
    results["folded_per_frame_path_rgb"] = maxdiff(ref_rgb, frgb)
    results["folded_per_frame_path_segmentation"] = maxdiff(ref_seg, fseg)
    with torch.no_grad():
        one = [ours.frames(torch.from_numpy(tkp[i:i + 1]), ident.texture) for i in range(len(tkp))]
    results["ours_batched_vs_ours_one_at_a_time"] = max(maxdiff(rgb, torch.cat([o[0] for o in one])),
                                              maxdiff(seg, torch.cat([o[1] for o in one])))
    print(f"reference: {ref} at commit {commit}; torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU")
    # Random weights must still make outputs that vary, or equality would prove little.
    print(f"  the reference's output: RGB std {float(ref_rgb.std()):.3f}, range [{float(ref_rgb.min()):.2f}, "
          f"{float(ref_rgb.max()):.2f}]; segmentation range [{float(ref_seg.min()):.3f}, {float(ref_seg.max()):.3f}]")
    for k, v in results.items():
        print(f"  {k:36s} max abs difference {v:.3g}")
    worst = max(v for k, v in results.items() if not k.startswith("ours_"))
    ok = worst <= 1e-4
    print(f"largest difference {worst:.3g}: {'within' if ok else 'ABOVE'} the 1e-4 target")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"commit": commit, "max_abs_diff": results}, indent=1))
    return 0 if ok else 1


def ours_warp(texture, uv):
    from livingportrait_backend.model.bilayer.texture_warp import warp_texture

    return warp_texture(texture, uv)


if __name__ == "__main__":
    sys.exit(main())
