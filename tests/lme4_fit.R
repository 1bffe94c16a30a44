# Fit the pain-trajectory model (ptanalytics.models.trajectory) with lme4, for tests/test_lme4.py.
#
#   Rscript tests/lme4_fit.R <model-frame.csv> <out.json>
#
# The model is the statsmodels one transcribed by hand (DEFAULT_FORMULA and DEFAULT_RE):
#   * fixed effects identical; C(sex) and C(chronicity) become factors whose reference level is
#     the first in C-locale sorted order, as in patsy (levels = sorted unique values);
#   * random part (1 + months_guided + months_maintenance | patient_id): an unstructured 3 x 3
#     covariance per patient, as statsmodels' re_formula "~ months_guided + months_maintenance";
#   * REML, bobyqa with tight tolerances.
# Writes JSON (no jsonlite needed): fixed effects and their standard errors by lme4 name, the
# random-effect SDs and correlations, the residual SD, the covariance matrix of the random effects
# relative to the residual variance, logLik (REML), the REML criterion, n, p and convergence
# messages.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) {
  stop("usage: Rscript lme4_fit.R <model-frame.csv> <out.json>")
}
suppressPackageStartupMessages(library(lme4))

d <- read.csv(args[[1]], stringsAsFactors = FALSE)
d$patient_id <- factor(d$patient_id)
for (col in c("sex", "chronicity")) {
  d[[col]] <- factor(d[[col]], levels = sort(unique(d[[col]]), method = "radix"))
}

form <- nprs ~ months_guided + months_maintenance + adherence_between +
  adherence_between:months_guided + adherence_between:months_maintenance +
  adherence_within + ilr_1 + ilr_2 + ilr_3 + ilr_4 + planned_weeks_c + age_c +
  factor(sex) + factor(chronicity) +
  co_heat_cold + co_massage + co_manual_therapy + co_acupuncture +
  co_epidural_injection + co_analgesic +
  (1 + months_guided + months_maintenance | patient_id)

fit <- lmer(
  form,
  data = d,
  REML = TRUE,
  control = lmerControl(
    optimizer = "bobyqa",
    optCtrl = list(maxfun = 1e5, rhobeg = 0.2, rhoend = 1e-10)
  )
)

vc <- VarCorr(fit)$patient_id
sds <- attr(vc, "stddev")
cors <- attr(vc, "correlation")
cor_values <- c()
for (i in seq_len(nrow(cors) - 1L)) {
  for (j in (i + 1L):ncol(cors)) {
    cor_values[sprintf("cor(%s,%s)", rownames(cors)[i], colnames(cors)[j])] <- cors[i, j]
  }
}
sigma_hat <- sigma(fit)
ll <- logLik(fit) # REML = TRUE, so this is the REML log-likelihood
conv <- fit@optinfo$conv

json_str <- function(x) {
  paste0("\"", gsub("\"", "\\\"", gsub("\\", "\\\\", x, fixed = TRUE), fixed = TRUE), "\"")
}
json_num <- function(x) ifelse(is.finite(x), sprintf("%.17g", x), "null")
json_obj <- function(x) {
  paste0("{", paste(json_str(names(x)), json_num(unname(x)), sep = ": ", collapse = ", "), "}")
}
json_strs <- function(x) paste0("[", paste(vapply(x, json_str, ""), collapse = ", "), "]")
rel_cov <- as.matrix(vc) / sigma_hat^2
rows <- apply(rel_cov, 1L, function(r) paste0("[", paste(json_num(r), collapse = ", "), "]"))

out <- c(
  "{",
  paste0("  \"fixed\": ", json_obj(fixef(fit)), ","),
  paste0("  \"se\": ", json_obj(sqrt(diag(as.matrix(vcov(fit))))), ","),
  paste0("  \"sd\": ", json_obj(sds), ","),
  paste0("  \"cor\": ", json_obj(cor_values), ","),
  paste0("  \"residual_sd\": ", json_num(sigma_hat), ","),
  paste0("  \"re_names\": ", json_strs(rownames(vc)), ","),
  paste0("  \"relative_cov_re\": [", paste(rows, collapse = ", "), "],"),
  paste0("  \"loglik_reml\": ", json_num(as.numeric(ll)), ","),
  paste0("  \"reml_criterion\": ", json_num(as.numeric(REMLcrit(fit))), ","),
  paste0("  \"df\": ", attr(ll, "df"), ","),
  paste0("  \"nobs\": ", nobs(fit), ","),
  paste0("  \"p\": ", length(fixef(fit)), ","),
  paste0("  \"optimizer_code\": ", conv$opt, ","),
  paste0("  \"messages\": ", json_strs(c(conv$lme4$messages, fit@optinfo$message)), ","),
  paste0("  \"singular\": ", tolower(isSingular(fit)), ","),
  paste0("  \"lme4_version\": ", json_str(as.character(packageVersion("lme4")))),
  "}"
)
writeLines(out, args[[2]])
