# R side of bench/detectors.py: R `surveillance` on exactly the input the Python side wrote.
#
# Usage: Rscript detectors.R DIR S_DAILY T_DAILY N_DAILY EVAL_DAILY S_WEEKLY T_WEEKLY N_WEEKLY EVAL_WEEKLY
# Reads DIR/daily.bin and DIR/weekly.bin (float64, series after series: column-major [time, series]),
# takes the first N_* series, and runs earsC C1/C2/C3 over the last EVAL_DAILY days and farrington /
# farringtonFlexible (Noufaily settings) over the last EVAL_WEEKLY weeks, on multivariate sts objects
# of BLOCK series (R loops over the series of each itself). Compute time is proc.time() around each
# detector's calls.
# Writes DIR/r_<name>.bin (alarms, int32 [time, series], NA as NA_integer_) and DIR/r_timings.txt.
suppressPackageStartupMessages(library(surveillance))
a <- commandArgs(trailingOnly = TRUE)
dir <- a[1]
num <- as.integer(a[-1])
names(num) <- c("s_daily", "t_daily", "n_daily", "eval_daily", "s_weekly", "t_weekly", "n_weekly", "eval_weekly")

load_matrix <- function(file, s, t, n) {
  v <- readBin(file.path(dir, file), "double", n = s * t)
  matrix(v, nrow = t, ncol = s)[, seq_len(n), drop = FALSE]
}

# Series go to R in blocks of BLOCK: earsC and farrington write into the sts matrices one series at
# a time, which copies them, so one sts of 3,000 daily series costs ~4x the same series in blocks
# of 100 (measured here: earsC C1 77 s vs ~20 s). The blocks are built before the clock starts.
BLOCK <- 100
blocks <- function(m, frequency) {
  lapply(split(seq_len(ncol(m)), (seq_len(ncol(m)) - 1) %/% BLOCK),
         function(cols) sts(observed = m[, cols, drop = FALSE], frequency = frequency))
}

timed <- function(name, parts, call) {
  start <- proc.time()[["elapsed"]]
  res <- suppressWarnings(lapply(parts, call))
  secs <- proc.time()[["elapsed"]] - start
  alarm <- do.call(cbind, lapply(res, alarms))  # [time, series]
  writeBin(as.integer(as.vector(alarm)), file.path(dir, paste0("r_", name, ".bin")), size = 4)
  cat(name, sprintf("%.3f", secs), "\n", file = file.path(dir, "r_timings.txt"), append = TRUE)
}

daily <- blocks(load_matrix("daily.bin", num[["s_daily"]], num[["t_daily"]], num[["n_daily"]]), 365)
days <- (num[["t_daily"]] - num[["eval_daily"]] + 1):num[["t_daily"]]
for (method in c("C1", "C2", "C3")) {
  timed(method, daily, function(s) earsC(s, control = list(range = days, method = method)))
}

weekly <- blocks(load_matrix("weekly.bin", num[["s_weekly"]], num[["t_weekly"]], num[["n_weekly"]]), 52)
weeks <- (num[["t_weekly"]] - num[["eval_weekly"]] + 1):num[["t_weekly"]]
timed("farrington", weekly, function(s) farrington(s, control = list(range = weeks, b = 5, w = 3), verbose = FALSE))
noufaily <- list(range = weeks, b = 5, w = 3, noPeriods = 10, weightsThreshold = 2.58, pastWeeksNotIncluded = 26,
                 pThresholdTrend = 1, thresholdMethod = "nbPlugin", alpha = 0.05)
timed("noufaily", weekly, function(s) farringtonFlexible(s, control = noufaily))
