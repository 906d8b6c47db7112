#!/usr/bin/env bash
# The `cargo lambda deploy` path (make deploy-cargo-lambda STACK=<name>; docs/deploying.md,
# "With cargo lambda deploy"):
#   1. deploys deploy/cargo-lambda-base.yaml as stack $STACK (tables, events bucket,
#      reconciliation queue, one role per function);
#   2. reads its outputs;
#   3. builds the eight functions (cargo lambda build --release --arm64);
#   4. deploys each as function "$STACK-<function>" with `cargo lambda deploy`: memory, timeout,
#      tracing and the static variables from its Cargo.toml ([package.metadata.lambda.deploy]),
#      plus --iam-role and the stack's names as --env-var (--admerge: added to the Cargo.toml
#      variables, not replacing them), and a function URL for the five webhooks;
#   5. adds ledger-reconciler's trigger on the reconciliation queue (once) and prints the URLs.
#
# Settings (environment):
#   STACK                         required: the base stack's name, and the functions' prefix
#   PISMO_CERTS_URL               required: Pismo's certificate map (template.yaml's PismoCertsUrl)
#   ARITMA_AUTHORIZATION_ARN | ARITMA_AUTHORIZATION   Aritma's Authorization value (secret, or
#                                 the value); ARITMA_AUTHORIZATION_PREVIOUS(_UNTIL) during a
#                                 rotation without a secret; ARITMA_ALLOWED_ORIGINS
#   POLICY_FILE, POLICY_URI, SHADOW_POLICY_FILE, SHADOW_POLICY_URI   the webhooks' policies
#   PISMO_SCHEMA_BUCKET, PISMO_BUCKET, PISMO_ROLE_ARN, PISMO_ROLE_EXTERNAL_ID, KMS_KEY_ARN
#                                 as template.yaml's parameters of the same name
#   DRY_RUN=1                     print every command instead of running it (no AWS, no build);
#                                 the stack outputs come from OUTPUTS_FILE (lines
#                                 "<OutputKey><TAB><OutputValue>", as the describe-stacks
#                                 command below prints them) or are <OutputKey> placeholders.
# Empty settings are left out: every function reads an empty variable as unset
# (shared::settings::Env), and cargo lambda refuses `--env-var NAME=`.
# Printed commands show secret values (ARITMA_AUTHORIZATION*, PISMO_ROLE_EXTERNAL_ID) as ***.
set -euo pipefail

cd "$(dirname "$0")/.."

FUNCTIONS=(card-tokenization banking-antifraud full-balance-antifraud zero-balance
  aritma-events event-files event-stream ledger-reconciler)
# Reached over HTTP: Pismo's four webhooks and Aritma's.
WEBHOOKS=(card-tokenization banking-antifraud full-balance-antifraud zero-balance aritma-events)
OUTPUT_KEYS=(JournalTableName ControlsTableName EventsTableName LedgerTableName
  PismoEventsBucketName ReconcileQueueUrl ReconcileQueueArn
  CardTokenizationRoleArn BankingAntifraudRoleArn FullBalanceAntifraudRoleArn ZeroBalanceRoleArn
  AritmaEventsRoleArn EventFilesRoleArn EventStreamRoleArn LedgerReconcilerRoleArn)
SECRETS='^(--env-var[= ])?(ARITMA_AUTHORIZATION|ARITMA_AUTHORIZATION_PREVIOUS|PISMO_ROLE_EXTERNAL_ID)='

dry() { [[ "${DRY_RUN:-}" == 1 ]]; }

# Prints a command (shell-quoted, secrets masked), then runs it unless DRY_RUN=1.
run() {
  local shown=() a
  for a in "$@"; do
    if [[ "$a" =~ $SECRETS ]]; then a="${a%%=*}=***"; fi
    shown+=("$a")
  done
  printf '%q ' "${shown[@]}"
  printf '\n'
  dry || "$@"
}

fail() {
  echo "deploy/cargo-lambda.sh: $*" >&2
  exit 2
}

[[ -n "${STACK:-}" ]] || fail "STACK is required (make deploy-cargo-lambda STACK=<name>)"
[[ "$STACK" =~ ^[A-Za-z][A-Za-z0-9-]{0,40}$ ]] || fail "STACK must be letters, digits and -, at most 41"
if [[ -z "${PISMO_CERTS_URL:-}" ]]; then
  dry || fail "PISMO_CERTS_URL is required (Pismo's certificate map; ask your Pismo representative)"
  PISMO_CERTS_URL='<PismoCertsUrl>'
fi
if [[ -n "${ARITMA_AUTHORIZATION_ARN:-}" && -n "${ARITMA_AUTHORIZATION:-}" ]]; then
  fail "set ARITMA_AUTHORIZATION_ARN or ARITMA_AUTHORIZATION, not both"
fi

# 1. The base stack. Parameters only when set (the template's defaults otherwise).
params=()
add_param() { [[ -z "${2:-}" ]] || params+=("$1=$2"); }
add_param KmsKeyArn "${KMS_KEY_ARN:-}"
add_param PolicyUri "${POLICY_URI:-}"
add_param ShadowPolicyUri "${SHADOW_POLICY_URI:-}"
add_param AritmaAuthorizationArn "${ARITMA_AUTHORIZATION_ARN:-}"
add_param PismoSchemaBucket "${PISMO_SCHEMA_BUCKET:-}"
add_param PismoBucket "${PISMO_BUCKET:-}"
add_param PismoRoleArn "${PISMO_ROLE_ARN:-}"
base=(aws cloudformation deploy --stack-name "$STACK" --template-file deploy/cargo-lambda-base.yaml
  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset)
if ((${#params[@]})); then base+=(--parameter-overrides "${params[@]}"); fi
run "${base[@]}"

# 2. Its outputs.
outputs=$(mktemp)
trap 'rm -f "$outputs"' EXIT
describe=(aws cloudformation describe-stacks --stack-name "$STACK"
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text)
if dry; then
  printf '%q ' "${describe[@]}"
  printf '\n'
  if [[ -n "${OUTPUTS_FILE:-}" ]]; then
    cp "$OUTPUTS_FILE" "$outputs"
  else
    for key in "${OUTPUT_KEYS[@]}"; do printf '%s\t<%s>\n' "$key" "$key"; done >"$outputs"
  fi
else
  "${describe[@]}" >"$outputs"
fi
out() {
  local value
  value=$(awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$outputs")
  [[ -n "$value" ]] || fail "stack $STACK has no output $1"
  printf '%s' "$value"
}
bucket=$(out PismoEventsBucketName)

# 3. Build.
build=(cargo lambda build --release --arm64)
for f in "${FUNCTIONS[@]}"; do build+=(-p "$f"); done
dry || rustup target add aarch64-unknown-linux-gnu
run "${build[@]}"

# 4. Deploy each function.
# The logical id prefix of template.yaml (and of the base stack's <Name>RoleArn outputs).
logical() {
  local f=$1 word name=''
  for word in ${f//-/ }; do name+="${word^}"; done
  printf '%s' "$name"
}
for f in "${FUNCTIONS[@]}"; do
  args=(cargo lambda deploy --admerge --binary-name "$f" "$STACK-$f"
    --iam-role "$(out "$(logical "$f")RoleArn")")
  env=(
    "JOURNAL_TABLE=$(out JournalTableName)"
    "CONTROLS_TABLE=$(out ControlsTableName)"
    "EVENTS_TABLE=$(out EventsTableName)"
    "LEDGER_TABLE=$(out LedgerTableName)"
  )
  opt() { [[ -z "${2:-}" ]] || env+=("$1=$2"); }
  case "$f" in
    card-tokenization | banking-antifraud | full-balance-antifraud | zero-balance)
      env+=("PISMO_CERTS_URL=$PISMO_CERTS_URL")
      [[ "$f" != zero-balance ]] || env+=("RECONCILE_QUEUE_URL=$(out ReconcileQueueUrl)")
      opt POLICY_FILE "${POLICY_FILE:-}"
      opt POLICY_URI "${POLICY_URI:-}"
      opt SHADOW_POLICY_FILE "${SHADOW_POLICY_FILE:-}"
      opt SHADOW_POLICY_URI "${SHADOW_POLICY_URI:-}"
      ;;
    aritma-events)
      env+=("QUARANTINE_URI=s3://$bucket/quarantine")
      opt ARITMA_AUTHORIZATION_ARN "${ARITMA_AUTHORIZATION_ARN:-}"
      if [[ -z "${ARITMA_AUTHORIZATION_ARN:-}" ]]; then
        opt ARITMA_AUTHORIZATION "${ARITMA_AUTHORIZATION:-}"
        opt ARITMA_AUTHORIZATION_PREVIOUS "${ARITMA_AUTHORIZATION_PREVIOUS:-}"
        opt ARITMA_AUTHORIZATION_PREVIOUS_UNTIL "${ARITMA_AUTHORIZATION_PREVIOUS_UNTIL:-}"
      fi
      opt ARITMA_ALLOWED_ORIGINS "${ARITMA_ALLOWED_ORIGINS:-}"
      ;;
    event-files | event-stream)
      env+=("QUARANTINE_URI=s3://$bucket/quarantine" "LARGE_EVENT_URI=s3://$bucket/large-events")
      if [[ "$f" == event-files ]]; then
        env+=("INGEST_BUCKETS=$bucket")
      else
        opt ALLOWED_SOURCE_BUCKETS "${PISMO_BUCKET:-}"
      fi
      if [[ -n "${PISMO_SCHEMA_BUCKET:-}" ]]; then env+=("SCHEMA_SOURCE=s3://$PISMO_SCHEMA_BUCKET"); fi
      opt PISMO_ROLE_ARN "${PISMO_ROLE_ARN:-}"
      opt PISMO_ROLE_EXTERNAL_ID "${PISMO_ROLE_EXTERNAL_ID:-}"
      ;;
  esac
  for e in "${env[@]}"; do args+=(--env-var "$e"); done
  for w in "${WEBHOOKS[@]}"; do
    if [[ "$w" == "$f" ]]; then args+=(--enable-function-url); fi
  done
  run "${args[@]}"
done

# 5. ledger-reconciler's trigger: the reconciliation queue, as template.yaml's Queue event.
reconciler="$STACK-ledger-reconciler"
queue_arn=$(out ReconcileQueueArn)
mapping=(aws lambda create-event-source-mapping --function-name "$reconciler"
  --event-source-arn "$queue_arn" --batch-size 10
  --function-response-types ReportBatchItemFailures)
if dry; then
  run "${mapping[@]}"
else
  existing=$(aws lambda list-event-source-mappings --function-name "$reconciler" \
    --event-source-arn "$queue_arn" --query 'length(EventSourceMappings)' --output text)
  if [[ "$existing" == 0 ]]; then run "${mapping[@]}"; fi
fi

echo
echo "function URLs (register them with Pismo and Aritma; docs/deploying.md):"
for w in "${WEBHOOKS[@]}"; do
  url=(aws lambda get-function-url-config --function-name "$STACK-$w" --query FunctionUrl --output text)
  if dry; then
    printf '  %-24s ' "$w"
    printf '%q ' "${url[@]}"
    printf '\n'
  else
    printf '  %-24s %s\n' "$w" "$("${url[@]}")"
  fi
done
