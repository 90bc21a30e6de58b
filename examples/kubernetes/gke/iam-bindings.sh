#!/bin/sh
# Least privilege for gke/: the Google service account behind the pods may read
# exactly the secrets that deployment.yaml references (roles/secretmanager.secretAccessor
# on each secret, never on the project), and only the orders/orders-api
# Kubernetes service account may act as it.
set -eu

# The Google service account that serviceaccount.yaml names.
gcloud iam service-accounts create orders-api --project orders-prod \
  --display-name "orders-api pods (secrets-init)"

# Workload Identity: the Kubernetes service account orders/orders-api may act as it.
gcloud iam service-accounts add-iam-policy-binding orders-api@orders-prod.iam.gserviceaccount.com \
  --project orders-prod \
  --role roles/iam.workloadIdentityUser \
  --member "serviceAccount:orders-prod.svc.id.goog[orders/orders-api]"

# Read access to each referenced secret, one binding per secret.
gcloud secrets add-iam-policy-binding orders-db --project orders-prod \
  --role roles/secretmanager.secretAccessor \
  --member serviceAccount:orders-api@orders-prod.iam.gserviceaccount.com
gcloud secrets add-iam-policy-binding payments-token --project orders-prod \
  --role roles/secretmanager.secretAccessor \
  --member serviceAccount:orders-api@orders-prod.iam.gserviceaccount.com
gcloud secrets add-iam-policy-binding session-key --project orders-prod \
  --role roles/secretmanager.secretAccessor \
  --member serviceAccount:orders-api@orders-prod.iam.gserviceaccount.com
