# oforest.otree — developer and CI entry points. `make test` is the one command CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ifndef OFOREST_CACHE
OFOREST_CACHE := $(shell scripts/paths.sh cache)
endif
ifndef VENV
VENV := $(shell OFOREST_CACHE="$(OFOREST_CACHE)" scripts/paths.sh venv)
endif
# Ubuntu releases whose images are built and whose platforms the scenarios run on.
# molecule-site and molecule-microk8s run on 20.04 in every CI run; the host scenarios (default,
# harden) take 20.04, 22.04 and 24.04 in turn (tests/ci.sh, OFOREST_HOST_RELEASE).
UBUNTU ?= 20.04
SCENARIO ?= default
export OFOREST_CACHE VENV UBUNTU

.PHONY: help test setup venv images lint yamllint ansible-lint sanity build unit k8s-build integration manifests otree-runtime openstack-image pipeline molecule clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

test: ## everything, in order, with a summary table (what CI runs)
	@tests/ci.sh all

setup: ## system packages + podman configuration (root)
	@scripts/setup-host.sh

venv: ## the pinned Python environment
	@scripts/venv.sh

images: ## Ubuntu test host images (cached by recipe hash)
	@tests/images/build.sh $(UBUNTU)

lint: yamllint ansible-lint ## yamllint + ansible-lint

yamllint: venv
	@tests/ci.sh yamllint

ansible-lint: venv
	@tests/ci.sh ansible-lint

sanity: venv ## ansible-test sanity for the plugins
	@tests/ci.sh sanity

build: venv ## ansible-galaxy collection build + install into an empty path
	@tests/ci.sh build

unit: venv ## pytest unit tests
	@tests/ci.sh unit

k8s-build: ## upstream Kubernetes binaries from tests/k8s/go.mod (cached by hash)
	@tests/ci.sh k8s-build

integration: venv ## engine + module against a REAL control plane (or OFOREST_KUBECONFIG's cluster)
	@tests/ci.sh integration

manifests: venv ## rendered manifests: kubernetes-validate + checkov
	@tests/ci.sh manifests

otree-runtime: venv ## the rendered oTree container run for real (Postgres, browser bots)
	@tests/ci.sh otree-runtime

openstack-image: ## the OpenStack test image from Debian 12's packages (cached by recipe hash)
	@tests/ci.sh openstack-image

pipeline: venv ## the scaffolded pipeline's jobs run by gitlab-ci-local (test, build)
	@tests/ci.sh pipeline

molecule: venv images ## one Molecule scenario: make molecule SCENARIO=default
	@tests/ci.sh molecule-$(SCENARIO)

clean: ## remove build outputs (keeps the cached venv and images)
	rm -rf .cache tests/output *.tar.gz
