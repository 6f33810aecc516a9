"""`edgefill evaluate`: PSNR, hole PSNR and SSIM of every inpainting method on every mask type.

Methods (names are part of the JSON contract), in this order:
    telea          cv2.inpaint(..., radius 3, cv2.INPAINT_TELEA)   (no bundle needed)
    ns             cv2.inpaint(..., radius 3, cv2.INPAINT_NS)      (no bundle needed)
    telea+refiner  the bundle's refiner on Telea's fill: M*y + (1-M)*R(telea[, hole]) (issue 20)
    ns+refiner     the same on NS's fill
    telea+baseline a second bundle's refiner on Telea's fill (`--baseline-bundle B`, only then):
                   with B's refiner trained on Telea's fills, the strong baseline of issue 20
    lsgan          latent search, then paste: M*y + (1-M)*G(z)
    lsgan+poisson  the same search, Poisson-blended (blend.poisson, cv2.seamlessClone)
    lsgan+refiner  the product: the same search, blended as the bundle's defaults say (Poisson
                   for the shipped bundle), then refined: M*y + (1-M)*R(blended[, hole])
The search runs ONCE per batch of images; the three lsgan methods are derived from it. It
starts where the product does (`init` "auto": the bundle's encoder when it has one, with the
bundle's defaults for that start), or from "random"/"encoder" when asked.

telea+refiner / ns+refiner are in the default method set: beside lsgan+refiner they show what
the search adds over "a classical fill, then the same refiner". `--no-baselines` drops only the
plain OpenCV rows (telea, ns): the +refiner rows measure the bundle, so they stay unless
--methods leaves them out (their OpenCV fill is still computed, just not reported). They need a
bundle with a refiner; the default method set leaves every +refiner row out (with a notice)
for a bundle without one. They have ONE output per hole: K different fills need the search.

K samples per hole (`samples` K > 1, `--samples K`): the search of each batch is
Pipeline.run_samples with K (one batched call of N*K problems, the same start and seeds as the
single run), so sample 0 IS the single output and the lsgan rows are derived from it (the
numbers of the method table do not change with K). For lsgan+refiner, per mask kind, mean and
95% CI over the images ("samples" in the JSON, a second markdown table):
    best_of_k      hole PSNR and SSIM of the sample nearest the truth, each metric picking its
                   own best (an oracle: it needs the truth, which inference does not have)
    mean_of_k      hole PSNR and SSIM averaged over the K samples
    diversity      before the refiner (the blended search results) and after (the final
                   outputs): the mean pairwise hole PSNR between an image's K samples (lower =
                   more different; an identical pair counts as 100 dB, the PSNR cap) and the
                   per-pixel standard deviation over the K samples, mean over the hole (0..255)

Every method sees only the masked input (hole pixels set to grey 128 before anything runs), so
no ground truth leaks into the hole. Metrics (runtime.metrics): PSNR over the whole image, PSNR
over the hole, SSIM (`ssim`: the 11x11 Gaussian window of the paper; `ssim7`: scikit-image's
default 7x7 uniform window, the convention issue 20's goal was set in), the seam (the mean step
across the hole's border, 0..255, beside the truth's own step on the same border:
`seam_truth`); per (mask, method): mean and a 95% Student-t
interval over the images. Beside them, one number per (mask, method) over all its images: the
hole's realism, `hole_swd` (HOLE_SWD_DESCRIPTION; `hole_swd_floor`: real faces of other people in
the same holes), which hole PSNR cannot see: the mean of the faces the known pixels allow has the
best PSNR and a blurred, unreal texture; `hole_swd_levels` and `hole_swd_floor_levels` give it per
Laplacian level (64, 32, 16). With K samples, the samples' `hole_swd` before and after the refiner
(the mean over the K sample positions), overall and per level.

Reproducible: the mask of image i under mask type k is drawn from
np.random.default_rng([seed, crc32(k), i]) (independent of --limit, batch size and of the other
mask types); image i's random restarts start from initial_z(1, restarts, z_dim, seed + i) and
the encoder's start depends on image i alone (sample k >= 1 of image i on (seed + i, k) alone:
runtime.core.starts.sample_starts), so the numbers do not depend on --batch-size either. A rerun
with the same data, bundle and settings gives identical numbers.

Paired differences ("paired" in the JSON, a table of its own): with lsgan+refiner and at least one
other method, per mask kind and other method, the product's hole PSNR and SSIM minus that
method's on the same images and masks, mean and 95% CI of the per-image differences, and the
share of images where the product's hole PSNR is higher. Two methods whose own intervals overlap
can still differ clearly image by image: this is the test of which is ahead.

The package, one job per module: config (names, EvaluateConfig, masks), methods (one batch's
outputs), statistics (means, intervals, paired, samples), realism (hole SWD), run (evaluate(),
a KindRecord per mask kind), settings (the JSON's "settings"), report (tables and grids).
"""
from ...imaging.masks import HOLE_GREY, masked_input
from .config import (BASELINE_METHOD, BASELINES, BLEND_DESCRIPTION, DEFAULT_METHODS, INITS, LSGAN_METHODS, METHODS,
                     METRICS, REFINED_BASELINES, REFINER_METHODS, SAMPLED_METHOD, EvaluateConfig, mask_batch, parse_list,
                     parse_masks, select_methods)
from .methods import BatchOutputs, run_batch, run_methods
from .realism import HOLE_SWD_DESCRIPTION, REALISM_IMAGES, hole_realism
from .report import grid_image, markdown_table, paired_table, samples_grid_image, samples_table
from .run import Evaluation, bundle_summary, evaluate
from .statistics import SAMPLE_STATS, paired_difference, sample_statistics, summarise, summarise_samples

__all__ = ["BASELINE_METHOD", "BASELINES", "BLEND_DESCRIPTION", "DEFAULT_METHODS", "HOLE_GREY", "INITS",
           "LSGAN_METHODS", "METHODS", "METRICS", "REFINED_BASELINES", "REFINER_METHODS", "SAMPLED_METHOD",
           "EvaluateConfig", "mask_batch", "masked_input", "parse_list", "parse_masks", "select_methods",
           "BatchOutputs", "run_batch", "run_methods", "HOLE_SWD_DESCRIPTION", "REALISM_IMAGES",
           "hole_realism", "grid_image", "markdown_table", "paired_table", "samples_grid_image",
           "samples_table", "Evaluation", "bundle_summary", "evaluate", "SAMPLE_STATS", "paired_difference",
           "sample_statistics", "summarise", "summarise_samples"]
