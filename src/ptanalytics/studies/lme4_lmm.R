# Fit a linear mixed model with lme4 (ptanalytics.studies.lme4: tests and benchmarks).
#
#   Rscript lme4_lmm.R <data.csv> <formula> <REML TRUE|FALSE> <out.json> [repeats]
#
# <formula> is an lme4 formula, e.g. "y ~ t + (1 + t | g)"; the grouping column is read as a
# factor. bobyqa with tight tolerances (rhoend 1e-10), so that the comparison measures the two
# programs' agreement and not lme4's stopping rule. With [repeats] > 0 the fit is timed that many
# times (lme4's default optimiser settings, as a user would run it) and the median seconds
# written. Writes JSON (no jsonlite needed): fixed effects, their standard errors, the random
# effect covariance matrix, the residual SD, theta, logLik, the criterion and convergence.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 4L) {
  stop("usage: Rscript lme4_lmm.R <data.csv> <formula> <REML> <out.json> [repeats]")
}
suppressPackageStartupMessages(library(lme4))
d <- read.csv(args[[1]], stringsAsFactors = FALSE)
form <- as.formula(args[[2]])
reml <- as.logical(args[[3]])
repeats <- if (length(args) >= 5L) as.integer(args[[5]]) else 0L
grp <- all.vars(lme4::findbars(form)[[1]][[3]])
d[[grp]] <- factor(d[[grp]])

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
fit <- lmer(form, data = d, REML = reml, control = tight)

seconds <- NA
if (repeats > 0L) {
  times <- numeric(repeats)
  for (i in seq_len(repeats)) {
    times[i] <- system.time(lmer(form, data = d, REML = reml))[["elapsed"]]
  }
  seconds <- median(times)
}

vc <- as.matrix(VarCorr(fit)[[1]])
json_str <- function(x) {
  x <- gsub("[[:cntrl:]]", " ", gsub("\\", "/", x, fixed = TRUE))
  paste0("\"", gsub("\"", "\\\"", x, fixed = TRUE), "\"")
}
json_num <- function(x) ifelse(is.finite(x), sprintf("%.17g", x), "null")
json_obj <- function(x) {
  paste0("{", paste(json_str(names(x)), json_num(unname(x)), sep = ": ", collapse = ", "), "}")
}
json_vec <- function(x) paste0("[", paste(json_num(x), collapse = ", "), "]")
json_strs <- function(x) paste0("[", paste(vapply(x, json_str, ""), collapse = ", "), "]")
rows <- apply(vc, 1L, json_vec)
ll <- logLik(fit)
conv <- fit@optinfo$conv
out <- c(
  "{",
  paste0("  \"fixed\": ", json_obj(fixef(fit)), ","),
  paste0("  \"se\": ", json_obj(sqrt(diag(as.matrix(vcov(fit))))), ","),
  paste0("  \"re_names\": ", json_strs(rownames(vc)), ","),
  paste0("  \"cov_re\": [", paste(rows, collapse = ", "), "],"),
  paste0("  \"residual_sd\": ", json_num(sigma(fit)), ","),
  paste0("  \"theta\": ", json_vec(getME(fit, "theta")), ","),
  paste0("  \"loglik\": ", json_num(as.numeric(ll)), ","),
  paste0("  \"singular\": ", tolower(isSingular(fit)), ","),
  paste0("  \"messages\": ", json_strs(c(conv$lme4$messages, fit@optinfo$message)), ","),
  paste0("  \"seconds\": ", json_num(seconds), ","),
  paste0("  \"lme4_version\": ", json_str(as.character(packageVersion("lme4")))),
  "}"
)
writeLines(out, args[[4]])
