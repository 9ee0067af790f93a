# Reference thresholds from R's `surveillance` package on its bundled datasets, for
# tests/surveillance/test_r_reference.py (which holds the same case names and our equivalent calls).
#
# Usage: Rscript reference.R OUTDIR
# Writes, per case: <case>_observed.csv (weeks x series, the exact input R used) and
# <case>_result.csv (series, week [1-based], upperbound [%.17g, NA], alarm [0/1/NA]);
# and timings.txt (case, seconds R took). Every sts is built without dates (epochAsDate FALSE),
# so reference weeks are counted by index, as our detectors count them.
suppressPackageStartupMessages(library(surveillance))
out <- commandArgs(trailingOnly = TRUE)[1]
dir.create(out, showWarnings = FALSE, recursive = TRUE)

dataset <- function(name, cols = NULL) {
  e <- new.env()
  data(list = name, package = "surveillance", envir = e)
  x <- get(name, envir = e)
  m <- if (inherits(x, "sts")) observed(x) else if (is.data.frame(x)) as.matrix(x$case) else as.matrix(x$observed)
  if (!is.null(cols)) m <- m[, cols, drop = FALSE]
  storage.mode(m) <- "double"
  dimnames(m) <- NULL
  m
}

hus_daily <- function() {  # HUS O104:H4 hospitalisations per day, Germany 2011
  e <- new.env()
  data("husO104Hosp", package = "surveillance", envir = e)
  d <- e$husO104Hosp$dHosp
  days <- as.character(seq(min(d), max(d), by = "day"))
  matrix(as.numeric(table(factor(as.character(d), levels = days))), ncol = 1)
}

last <- function(m, n) (nrow(m) - n + 1):nrow(m)
fmt <- function(v) ifelse(is.na(v), "NA", sprintf("%.17g", v))

run <- function(case, m, fun, control) {
  s <- sts(observed = m, frequency = 52)
  secs <- system.time(res <- suppressWarnings(fun(s, control = control)))[["elapsed"]]
  range <- control$range
  write.table(m, file.path(out, paste0(case, "_observed.csv")), sep = ",", row.names = FALSE, col.names = FALSE,
              na = "NaN")
  long <- data.frame(
    series = rep(seq_len(ncol(m)), each = length(range)), week = rep(range, ncol(m)),
    upperbound = fmt(as.vector(upperbound(res))), alarm = as.integer(as.vector(alarms(res)))
  )
  write.csv(long, file.path(out, paste0(case, "_result.csv")), row.names = FALSE, quote = FALSE, na = "NA")
  cat(case, secs, "\n", file = file.path(out, "timings.txt"), append = TRUE)
}

classic <- function(s, control) farrington(s, control = control, verbose = FALSE)
ears <- function(method) function(s, control) earsC(s, control = modifyList(control, list(method = method)))

agona <- dataset("salmonella.agona")  # S. Agona, UK 1990-1995, 312 weeks
campy <- dataset("campyDE")  # campylobacteriosis, Germany 2002-2011, 522 weeks
newport <- dataset("salmNewport")  # S. Newport, 16 German states, 2004-2013, 528 weeks (sparse)
flu <- dataset("fluBYBW", 1:40)  # influenza, 40 districts of Bavaria/Baden-Wuerttemberg, 416 weeks
momo <- dataset("momo")  # all-cause deaths, Denmark 1995-2009, 8 age groups (9 to 350 a week), 782 weeks

run("farrington_agona", agona, classic, list(range = 264:312, b = 5, w = 3))
run("farrington_agona_b3", agona, classic, list(range = 160:312, b = 3, w = 2))
run("farrington_campy", campy, classic, list(range = last(campy, 104), b = 5, w = 3))
run("farrington_momo", momo, classic, list(range = last(momo, 26), b = 5, w = 3))
run("farrington_flu", flu, classic, list(range = 360:385, b = 5, w = 3))  # the 2008 season

noufaily <- list(b = 5, w = 3, noPeriods = 10, weightsThreshold = 2.58, pastWeeksNotIncluded = 26,
                 pThresholdTrend = 1, thresholdMethod = "nbPlugin", alpha = 0.05)
run("noufaily_agona", agona, farringtonFlexible, c(list(range = 264:312), noufaily))
run("noufaily_campy", campy, farringtonFlexible, c(list(range = last(campy, 52)), noufaily))
run("noufaily_momo", momo, farringtonFlexible, c(list(range = last(momo, 12)), noufaily))
run("noufaily_flu", flu, farringtonFlexible, c(list(range = 365:376), noufaily))

gappy <- agona
gappy[c(200, 250, 280), 1] <- NA  # missing weeks inside the baselines (farringtonFlexible drops them)
run("flexible_agona_missing", gappy, farringtonFlexible, list(range = 285:312, b = 5, w = 3))
run("noufaily_agona_missing", gappy, farringtonFlexible, c(list(range = 285:312), noufaily))

run("flexible_delta_momo", momo, farringtonFlexible, list(range = last(momo, 12), b = 5, w = 3))
run("flexible_muan_campy", campy, farringtonFlexible,
    modifyList(noufaily, list(range = last(campy, 52), thresholdMethod = "muan", b = 4, w = 2)))

hus <- hus_daily()
for (method in c("C1", "C2", "C3")) {
  start <- c(C1 = 8, C2 = 10, C3 = 12)[[method]]
  run(paste0("ears_", method, "_hus"), hus, ears(method), list(range = start:nrow(hus)))
  run(paste0("ears_", method, "_newport"), newport, ears(method), list(range = start:nrow(newport)))
  run(paste0("ears_", method, "_flu"), flu, ears(method), list(range = start:nrow(flu), minSigma = 0.5))
}
