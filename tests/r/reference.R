# Reference fits for tests/test_r_reference.py: mixed models (lme4), splines::ns, Wilson
# intervals (prop.test), the responder logistic (glm) and GEE (geepack) models, and Rubin's rules
# (mice::pool), all on public datasets shipped with R packages, plus the model frames of the
# responder functions that the test writes into <dir>.
#
#   Rscript tests/r/reference.R <dir>
#
# Writes the public datasets to <dir>/<name>.csv, reads them back (so R and Python fit the very
# same numbers) and writes every reference figure to <dir>/ref.csv in long form: section, key,
# row, value (%.17g; "NA" for missing). A section whose R package is missing is left out and named
# in <dir>/missing.txt, so the Python tests of that section skip with the reason. Needs base R
# and, per section, lme4 + nlme, splines (base), geepack, mice. No jsonlite.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1L) stop("usage: Rscript reference.R <dir>")
out <- args[1]

rows <- list()
add <- function(section, key, value, row = NULL) {
  if (is.null(row)) row <- if (is.null(names(value))) seq_along(value) else names(value)
  value <- as.numeric(value)
  rows[[length(rows) + 1L]] <<- data.frame(
    section = section, key = key, row = as.character(row),
    value = ifelse(is.na(value), "NA", sprintf("%.17g", value))
  )
}
missing <- character(0)
have <- function(pkg) {
  ok <- requireNamespace(pkg, quietly = TRUE)
  if (!ok) missing <<- c(missing, pkg)
  ok
}
export <- function(data, name) {
  path <- file.path(out, paste0(name, ".csv"))
  write.csv(data, path, row.names = FALSE)
  read.csv(path)
}

# ---- mixed models: lmer(REML = TRUE / FALSE), bobyqa with tight tolerances
if (have("lme4") && have("nlme")) {
  suppressPackageStartupMessages(library(lme4))
  sets <- list(
    sleepstudy = list(data = lme4::sleepstudy, form = Reaction ~ Days + (Days | Subject)),
    orthodont = list(
      data = as.data.frame(nlme::Orthodont),
      form = distance ~ age + Sex + (age | Subject)
    ),
    dyestuff2 = list(data = lme4::Dyestuff2, form = Yield ~ 1 + (1 | Batch))
  )
  for (name in names(sets)) {
    d <- export(sets[[name]]$data, name)
    for (reml in c(TRUE, FALSE)) {
      fit <- lmer(
        sets[[name]]$form, data = d, REML = reml,
        control = lmerControl(
          optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhobeg = 0.2, rhoend = 1e-10),
          check.conv.singular = "ignore"
        )
      )
      sec <- paste("lmm", name, if (reml) "REML" else "ML", sep = "/")
      vc <- VarCorr(fit)[[1]]
      add(sec, "fixed", fixef(fit))
      add(sec, "se", sqrt(diag(as.matrix(vcov(fit)))), names(fixef(fit)))
      add(sec, "sd", attr(vc, "stddev"))
      cors <- attr(vc, "correlation")
      if (nrow(cors) > 1) add(sec, "cor", cors[1, 2], "1")
      add(sec, "sigma", sigma(fit), "1")
      add(sec, "loglik", as.numeric(logLik(fit)), "1")
      add(sec, "singular", isSingular(fit), "1")
    }
  }
}

# ---- splines::ns on datasets::cars, and lm(dist ~ ns(adh, df = 3)) as dose_response fits it
local({
  library(splines)
  cars <- export(datasets::cars, "cars")
  grid_x <- c(0, 2, 4, 10.5, 13, 19.25, 25, 30)
  for (spec in list(list(df = 3, int = FALSE), list(df = 5, int = FALSE),
                    list(df = 4, int = TRUE))) {
    b <- ns(cars$speed, df = spec$df, intercept = spec$int)
    sec <- sprintf("ns/df%d/intercept%s", spec$df, spec$int)
    add(sec, "knots", attr(b, "knots"), seq_along(attr(b, "knots")))
    for (j in seq_len(ncol(b))) add(sec, paste0("basis", j), b[, j])
    p <- predict(b, grid_x)
    for (j in seq_len(ncol(p))) add(sec, paste0("grid", j), p[, j])
  }
  # adh as dose_response makes it: speed / 25 (max 25, so the cap at 1 does nothing).
  cars$adh <- pmin(cars$speed / 25, 1)
  fit <- lm(dist ~ ns(adh, df = 3), data = cars)
  add("lm_ns", "coef", coef(fit), seq_along(coef(fit)))
  add("lm_ns", "se", sqrt(diag(vcov(fit))), seq_along(coef(fit)))
  grid <- seq(0, quantile(cars$adh, 0.99), length.out = 41)
  newx <- model.matrix(delete.response(terms(fit)), data.frame(adh = grid))
  zero <- model.matrix(delete.response(terms(fit)), data.frame(adh = 0))
  diff <- sweep(newx, 2, zero[1, ])
  add("lm_ns", "curve", diff %*% coef(fit))
  add("lm_ns", "curve_se", sqrt(rowSums((diff %*% vcov(fit)) * diff)))
  add("lm_ns", "grid", grid)
})

# ---- Wilson score intervals: prop.test(x, n, correct = FALSE)$conf.int
local({
  cases <- data.frame(
    x = c(0, 10, 3, 0, 1, 45, 1, 999, 7, 120),
    n = c(10, 10, 10, 1, 1, 120, 1000, 1000, 23, 150),
    conf = c(0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.90, 0.99)
  )
  for (i in seq_len(nrow(cases))) {
    ci <- suppressWarnings(
      prop.test(cases$x[i], cases$n[i], conf.level = cases$conf[i], correct = FALSE)$conf.int
    )
    add("wilson", "x", cases$x[i], i)
    add("wilson", "n", cases$n[i], i)
    add("wilson", "conf", cases$conf[i], i)
    add("wilson", "low", ci[1], i)
    add("wilson", "high", ci[2], i)
  }
})

# ---- responder logistic: glm(binomial) on the rows responder_logistic fits (written by the test)
if (file.exists(file.path(out, "logistic.csv"))) {
  d <- read.csv(file.path(out, "logistic.csv"))
  form <- as.formula(readLines(file.path(out, "logistic_formula.txt")))
  # Converged fully: with the default epsilon = 1e-8, glm's standard errors come from the IRLS
  # weights of the iteration before the last and differ from the converged ones by ~1e-4.
  fit <- glm(form, data = d, family = binomial,
             control = glm.control(epsilon = 1e-14, maxit = 100))
  s <- summary(fit)$coefficients
  add("logistic", "coef", s[, "Estimate"])
  add("logistic", "se", s[, "Std. Error"])
  add("logistic", "p", s[, "Pr(>|z|)"])
  ci <- confint.default(fit)  # Wald, as statsmodels
  add("logistic", "ci_low", ci[, 1])
  add("logistic", "ci_high", ci[, 2])
}

# ---- GEE: geepack::geeglm, exchangeable, robust SEs; the responder rows and respiratory
if (have("geepack")) {
  gee <- function(sec, form, d, id) {
    d$cluster_id <- id  # geeglm looks id up in data
    # geese's default epsilon (1e-4) stops short of the solution; converge fully.
    ctl <- geepack::geese.control(epsilon = 1e-12, maxit = 100)
    fit <- geepack::geeglm(form, data = d, id = cluster_id, family = binomial,
                           corstr = "exchangeable", control = ctl)
    s <- summary(fit)$coefficients
    add(sec, "coef", s[, "Estimate"], rownames(s))
    add(sec, "se", s[, "Std.err"], rownames(s))
    add(sec, "p", s[, "Pr(>|W|)"], rownames(s))
    add(sec, "alpha", unlist(fit$geese$alpha), "1")
    add(sec, "phi", unlist(fit$geese$gamma), "1")
  }
  if (file.exists(file.path(out, "gee.csv"))) {
    d <- read.csv(file.path(out, "gee.csv"))
    d$patient_id <- factor(d$patient_id, levels = unique(d$patient_id))
    gee("gee_responder", responder ~ adherence_between + months + nprs_baseline, d, d$patient_id)
  }
  resp <- export(geepack::respiratory, "respiratory")
  resp$cluster <- factor(paste(resp$center, resp$id), levels = unique(paste(resp$center, resp$id)))
  # visit varies within a patient, so the working correlation matters for the estimates too.
  gee("gee_respiratory", outcome ~ treat + sex + age + baseline + factor(center) + visit, resp,
      resp$cluster)
}

# ---- Rubin's rules: mice::pool on mice::nhanes, lm(chl ~ age + bmi), m = 5, seed 1
if (have("mice")) {
  suppressPackageStartupMessages(library(mice))
  imp <- mice(nhanes, m = 5, seed = 1, printFlag = FALSE)
  fits <- with(imp, lm(chl ~ age + bmi))
  for (i in seq_along(fits$analyses)) {
    f <- fits$analyses[[i]]
    add("mice", paste0("coef", i), coef(f))
    add("mice", paste0("var", i), diag(vcov(f)))
    add("mice", paste0("dfres", i), df.residual(f), "1")
  }
  pooled <- pool(fits)
  p <- pooled$pooled
  for (k in c("estimate", "ubar", "b", "t", "dfcom", "df", "riv", "lambda", "fmi")) {
    add("mice", paste0("pooled_", k), p[[k]], as.character(p$term))
  }
  s <- summary(pooled, conf.int = TRUE)
  for (k in c("estimate", "std.error", "statistic", "df", "p.value", "2.5 %", "97.5 %")) {
    add("mice", paste0("summary_", k), s[[k]], as.character(s$term))
  }
}

write.csv(do.call(rbind, rows), file.path(out, "ref.csv"), row.names = FALSE)
writeLines(missing, file.path(out, "missing.txt"))
