/*
 * claims.h - a claims experiment (`mode = claims`): run the experiments that hold the
 * evidence (each resumes, so finished cells are not run again), then answer each claim
 * with an effect size, its 95% interval over seeds and a verdict, in one Markdown page.
 *
 *   [experiment]  name, mode = claims, results, runs (experiment files, relative to this
 *                 one, comma-separated; run in order with this run's --profile),
 *                 correction (holm, the default | bh | none: how the p values of all the
 *                 file's tested claims are adjusted together), alpha (default 0.05),
 *                 chance, chance_margin (the rule for runs that never left chance, below)
 *   [claim.ID]    one per claim, in file order:
 *     text        the claim, as the source states it
 *     experiment  the experiment file whose results hold the evidence
 *     variant, baseline   name=value terms ("lrn=lrn dropout=0"); a cell belongs to a side
 *                 when its variant has every term (so terms left out pool over the rest)
 *     metric      (required) test_acc | best_test_acc | train_acc | gap | test_loss |
 *                 epoch_seconds | epoch1_test_acc (after the first epoch) | epochs_to_target
 *                 | seconds_to_target (the first epoch, or the training seconds up to it,
 *                 at which the run's validation accuracy reaches `target`, from its
 *                 metrics.csv; a run that never does is left out like a run at chance)
 *     target      with *_to_target: the validation accuracy to reach
 *     expect      higher | lower (variant against baseline) | similar (equivalent within
 *                 +-`margin`, default 0.005)
 *     paired      auto (default) | yes | no: compare by the paired t-test on the
 *                 differences between runs of the same seed, or by Welch's t-test; auto
 *                 pairs when every run on each side has exactly one partner on the other
 *     chance, chance_margin   this claim's own rule for runs that never left chance
 *   or, for a claim about the time of a training step (metric = step_ms):
 *     model, variant and baseline (model variables: "dropout=0.5"), backend (onednn),
 *     threads (1), batch (64), rounds (200): both networks built with the same weights
 *     and a synthetic batch, 10 rounds of warm-up, then per round one step of each in a
 *     seeded random order; the rounds pair them
 *   or, for a claim about a model's parameters:
 *     model, vars ("lrn=lrn"), layers (a layer type: "fc"), metric = parameters,
 *     expect = majority
 *
 * Every claim is read and checked before any evidence runs: an unknown key, expect or
 * metric is an error naming the file, the line and what is allowed.
 *
 * Pairs. A run's partner is the run on the other side with the same seed and the same
 * values of the terms the claim does not name (pooling lrn=lrn against lrn=none over a
 * dropout axis pairs seed 1 with dropout 0 on each side): the same seed starts from the
 * same initial weights and sees the data in the same order, so the paired test removes
 * what seeds change alike on both sides. The page says which test answered each claim.
 *
 * Runs that never left chance. A run whose final train accuracy (the cells' train_acc) is
 * below chance + chance_margin (default 0.1 + 0.05: a guess among 10 classes, and half as
 * much again) learnt nothing; averaged in, such runs would make a side's values two heaps
 * far apart. They are counted apart on each side, left out of the comparison (with their
 * partners, when paired), and the two sides' counts are compared by Fisher's exact test,
 * shown beside them (not adjusted, not part of the verdict).
 *
 * Several claims tested at once find more false differences than one: every tested
 * claim's p is adjusted over the file's claims (Holm's method holds the chance of any false
 * finding at alpha; Benjamini-Hochberg's the expected share of false findings), and the
 * verdicts use the adjusted p. The page shows both.
 *
 * Verdicts. higher: supported when the adjusted p is below alpha and the difference is
 * above 0, not supported when it is below 0, otherwise inconclusive (the page shows the
 * 1 - alpha interval); lower: mirrored; similar: two one-sided tests (TOST) at alpha,
 * "equivalent within +-margin" when both H0: diff <= -margin and H0: diff >= margin are
 * rejected, "not equivalent" when the difference is shown to lie beyond a margin, otherwise
 * inconclusive; its p (the one adjusted) is that of the deciding test and the page shows
 * the 1 - 2 alpha interval (90%), which lies inside or wholly outside the margin exactly
 * when the unadjusted tests decide; majority: supported when the layers hold more than
 * half the parameters. Fewer than 2 seeds a side is inconclusive.
 *
 * Beside an inconclusive verdict the page says how many seeds a side (pairs, when paired)
 * would give 80% power to decide it, were the observed difference and the measured spread
 * the true ones (cnb_seeds_to_detect, cnb_seeds_to_decide_equivalence: a normal
 * approximation with the t critical value, at alpha / m for m tested claims when the p
 * values are corrected, so that the number holds whatever the other claims show).
 *
 * Writes <results>/<name>/claims.md and claims.csv (atomically), linking each row to the
 * report and plots it came from.
 */
#ifndef CNB_CLAIMS_H
#define CNB_CLAIMS_H

#include "conf.h"
#include "registry.h"
#include "sweep.h"

/* `path` the claims file, already loaded into `c` (with --set applied by the caller). */
int cnb_claims_run(cnb_conf *c, const char *path, const char *profile, cnb_registry *reg,
                   const cnb_sweep_opts *so);

#endif
