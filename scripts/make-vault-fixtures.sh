#!/usr/bin/env bash
# Regenerates the Ansible Vault fixtures in inventory/testdata/vault/ with the
# real ansible-vault (Debian's ansible-core; scripts/deps.sh installs it), so
# that the tests check our decryption against what Ansible writes, not against
# our own encrypter. Every run makes new ciphertext (Ansible picks a random
# salt); the plaintexts and passwords stay the same, so the tests still pass.
set -euo pipefail
cd "$(dirname "$0")/../inventory/testdata/vault"
command -v ansible-vault >/dev/null || { echo "make-vault-fixtures: ansible-vault is required (apt-get install ansible-core)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Ansible must not read a config or vault settings of the person running this.
: >"$tmp/ansible.cfg"
export ANSIBLE_CONFIG=$tmp/ansible.cfg
unset ANSIBLE_VAULT_PASSWORD_FILE ANSIBLE_VAULT_IDENTITY_LIST ANSIBLE_VAULT_IDENTITY

# Test passwords, nothing else uses them.
printf 'runbook-test-vault-password\n' >default.pass
printf 'prod-test-password\n' >prod.pass
printf 'not-the-password\n' >wrong.pass
chmod 0600 ./*.pass

# encrypt_file IN OUT [--vault-id ID@FILE | --vault-password-file FILE]
encrypt_file() {
	local in=$1 out=$2
	shift 2
	rm -f "$out"
	ansible-vault encrypt "$@" --output "$out" "$in" 2> >(grep -v '^Encryption successful' >&2)
}

# encrypt_string NAME VALUE [options]: prints "NAME: !vault |" and the envelope.
encrypt_string() {
	local name=$1 value=$2
	shift 2
	printf '%s' "$value" | ansible-vault encrypt_string "$@" --stdin-name "$name" 2> >(grep -v '^Encryption successful' >&2)
	echo # ansible-vault ends the value without a newline
}

# Single envelopes, format 1.1 (no vault id) and 1.2 (vault id "prod").
printf 'a vault-encrypted file\nwith two lines\n' >plain.txt
encrypt_file plain.txt v11.vault --vault-password-file default.pass
encrypt_file plain.txt v12.vault --vault-id prod@prod.pass

# An inventory using every kind: a whole group_vars file (1.1), a whole
# host_vars file (1.2, id prod), inline values in the inventory file and in a
# group_vars file.
rm -rf inv
mkdir -p inv/group_vars/all inv/host_vars
{
	cat <<'YAML'
all:
  children:
    etcd:
      hosts:
        etcd-1:
          ansible_connection: local
        etcd-2:
          ansible_connection: local
YAML
	encrypt_string api_token 'tok-4f1b-inline-host' --vault-password-file default.pass | sed 's/^/          /'
} >inv/hosts.yml

cat >"$tmp/all-vault.yml" <<'YAML'
vault_db_password: s3cr3t-db-pass-7781
vault_api_keys:
  - key-one-1111
  - key-two-2222
YAML
encrypt_file "$tmp/all-vault.yml" inv/group_vars/all/vault.yml --vault-password-file default.pass
cat >inv/group_vars/all/main.yml <<'YAML'
db_user: runbook
YAML

{
	echo 'etcd_cluster: lab'
	encrypt_string etcd_root_password 'root-pw-inline-5521' --vault-id prod@prod.pass
} >inv/group_vars/etcd.yml

cat >"$tmp/etcd-1.yml" <<'YAML'
etcd_peer_secret: peer-secret-one-9090
YAML
encrypt_file "$tmp/etcd-1.yml" inv/host_vars/etcd-1.yml --vault-id prod@prod.pass

# Extra vars for -e @extra.yml, with an inline value.
{
	echo 'plain_extra: visible'
	encrypt_string extra_secret 'extra-secret-3141' --vault-password-file default.pass
} >extra.yml

echo "make-vault-fixtures: wrote $(pwd | sed "s|^$(cd ../../.. && pwd)/||")" >&2
