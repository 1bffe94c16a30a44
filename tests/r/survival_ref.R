# Reference fits for tests/test_r_survival.py: R's survival package on lung, veteran and heart,
# and on the dropout rows of ptanalytics' default cohort.
#
#   Rscript tests/r/survival_ref.R <dir>
#
# Writes <dir>/lung.csv, veteran.csv, heart.csv (the datasets as shipped with survival), reads
# them back (so R and Python fit the very same numbers), fits every reference model and writes
# <dir>/ref.csv in long form: section, row, key, value (%.17g; "NA" for missing). When
# <dir>/dropout.csv exists (written by the test from ptanalytics.models.survival's rows), it is
# fitted with the same formula as cox_dropout. Needs only base R and survival (no jsonlite).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1L) stop("usage: Rscript survival_ref.R <dir>")
out <- args[1]
suppressPackageStartupMessages(library(survival))

for (name in c("lung", "veteran", "heart")) {
  data <- get(name, envir = asNamespace("survival"))
  write.csv(data, file.path(out, paste0(name, ".csv")), row.names = FALSE)
}
lung <- read.csv(file.path(out, "lung.csv"))
veteran <- read.csv(file.path(out, "veteran.csv"))
heart <- read.csv(file.path(out, "heart.csv"))
# Two toy curves for the median's midpoint rule: flat at exactly 0.5 between 2 and 3.
toy <- data.frame(time = c(1, 2, 3, 4, 1.5, 2.5, 2.5, 6), status = c(1, 1, 1, 1, 1, 1, 0, 1),
                  arm = rep(c("a", "b"), each = 4))
write.csv(toy, file.path(out, "toy.csv"), row.names = FALSE)

rows <- list()
add <- function(section, key, value, row = seq_along(value)) {
  value <- as.numeric(value)
  rows[[length(rows) + 1L]] <<- data.frame(
    section = section, row = row, key = key,
    value = ifelse(is.na(value), "NA", sprintf("%.17g", value))
  )
}

# ---- Kaplan-Meier, every distinct time (censored = TRUE), and the median with its interval
km <- function(label, formula, data) {
  for (type in c("log", "log-log", "plain")) {
    fit <- survfit(formula, data = data, conf.type = type)
    s <- summary(fit, censored = TRUE)
    sec <- paste("km", label, type, sep = "/")
    add(sec, "time", s$time)
    add(sec, "stratum", if (is.null(s$strata)) rep(1L, length(s$time)) else as.integer(s$strata))
    add(sec, "n_at_risk", s$n.risk)
    add(sec, "events", s$n.event)
    add(sec, "censored", s$n.censor)
    add(sec, "survival", s$surv)
    add(sec, "std_error", s$std.err)
    add(sec, "ci_low", s$lower)
    add(sec, "ci_high", s$upper)
    tab <- summary(fit)$table
    if (is.null(dim(tab))) tab <- t(as.matrix(tab))
    sec <- paste("median", label, type, sep = "/")
    add(sec, "n", tab[, "records"])
    add(sec, "events", tab[, "events"])
    add(sec, "median", tab[, "median"])
    add(sec, "ci_low", tab[, "0.95LCL"])
    add(sec, "ci_high", tab[, "0.95UCL"])
    q <- quantile(fit, probs = 0.5)
    add(sec, "quantile_median", q$quantile)
  }
}
km("lung", Surv(time, status) ~ 1, lung)
km("lung_sex", Surv(time, status) ~ sex, lung)
km("veteran_celltype", Surv(time, status) ~ celltype, veteran)
km("toy_arm", Surv(time, status) ~ arm, toy)

# ---- log-rank (survdiff, rho = 0)
lr <- function(label, formula, data) {
  d <- survdiff(formula, data = data)
  sec <- paste("logrank", label, sep = "/")
  add(sec, "n", d$n)
  add(sec, "observed", d$obs)
  add(sec, "expected", d$exp)
  add(sec, "chisq", d$chisq)
  add(sec, "df", length(d$n) - 1)
  add(sec, "p_value", pchisq(d$chisq, length(d$n) - 1, lower.tail = FALSE))
}
lr("lung_sex", Surv(time, status) ~ sex, lung)
lr("veteran_celltype", Surv(time, status) ~ celltype, veteran)
lr("veteran_trt", Surv(time, status) ~ trt, veteran)

# ---- Cox
cox <- function(label, formula, data) {
  for (ties in c("efron", "breslow")) {
    fit <- coxph(formula, data = data, ties = ties)
    s <- summary(fit)
    sec <- paste("cox", label, ties, sep = "/")
    add(sec, "coef", coef(fit), row = names(coef(fit)))
    add(sec, "se", sqrt(diag(vcov(fit))), row = names(coef(fit)))
    add(sec, "loglik", fit$loglik, row = c("null", "fit"))
    add(sec, "lr", s$logtest, row = names(s$logtest))
    # summary()'s waldtest and sctest are rounded to 2 decimals: the unrounded ones
    add(sec, "wald", fit$wald.test, row = "test")
    add(sec, "score", fit$score, row = "test")
    add(sec, "n", c(fit$n, fit$nevent), row = c("n", "nevent"))
  }
}
cox("lung", Surv(time, status) ~ age + sex + ph.ecog, lung)
cox("lung_strata", Surv(time, status) ~ age + ph.ecog + strata(sex), lung)
cox("heart", Surv(start, stop, event) ~ age + year + surgery + transplant, heart)
veteran$celltype_chosen <- factor(veteran$celltype,
                                  levels = c("smallcell", "squamous", "adeno", "large"))
cox("veteran_chosen", Surv(time, status) ~ karno + age + trt + celltype_chosen, veteran)
cox("veteran_sorted", Surv(time, status) ~ karno + age + trt + factor(celltype), veteran)

dropout <- file.path(out, "dropout.csv")
if (file.exists(dropout)) {
  rows_d <- read.csv(dropout)
  cox("dropout", Surv(start, stop, event) ~ pain_change + nprs_baseline + age, rows_d)
}

write.csv(do.call(rbind, rows), file.path(out, "ref.csv"), row.names = FALSE)
