"""The `vigil` command: one click group; each concern adds its commands in its own module."""

from __future__ import annotations

import click

from cli.anomalies_cmd import anomalies
from cli.block_cmd import block
from cli.contract import contract
from cli.contract_node import call_cmd, deploy, query
from cli.drift_cmd import model_drift
from cli.fl_cmd import fl
from cli.genesis_cmd import genesis
from cli.gov_cmd import gov, model_list, model_propose
from cli.keys import keygen
from cli.ledger_cmds import anchor, status, verify_file
from cli.model import model
from cli.node_cmd import node
from cli.proof_cmd import proof
from cli.score_cmd import score
from cli.tx_cmd import tx
from cli.tx_offline import tx_send, tx_sign
from cli.upload_cmd import upload


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="vigil", prog_name="vigil")
def main() -> None:
    """Vigil: a permissioned consortium ledger.

    Member organisations each run a node; nodes agree on blocks with PBFT,
    run governance rules in a deterministic contract VM and score
    transactions with an anomaly model whose results are certified with the
    block.

    \b
    Set up a chain:
      vigil keygen --out node.key          make a key, print its public half
      vigil genesis --chain-id ID ...      write the genesis file
      vigil node init / vigil node run     set up and run a member's node

    \b
    Use a chain:
      vigil status --node URL              height, view, peers of a node
      vigil anchor FILE --key K --wait     record a file's digest and lineage
      vigil verify-file FILE               is this file anchored, and where?
      vigil tx show HASH                   a transaction and its receipt, verified
      vigil tx sign ... / vigil tx send F  sign with an air-gapped key, submit from elsewhere
      vigil proof export --tx HASH ...     one file proving a fact, for anyone to check
      vigil proof verify FILE              check such a file offline, from the genesis file
    """


main.add_command(keygen)
main.add_command(genesis)
main.add_command(node)
main.add_command(status)
main.add_command(anchor)
main.add_command(verify_file)
main.add_command(tx)
for _command in (tx_sign, tx_send):
    tx.add_command(_command)
main.add_command(block)
main.add_command(model)
main.add_command(fl)
main.add_command(contract)
for _command in (deploy, call_cmd, query):
    contract.add_command(_command)
main.add_command(score)
main.add_command(anomalies)
main.add_command(gov)
main.add_command(proof)
for _command in (upload, model_propose, model_list, model_drift):
    model.add_command(_command)


if __name__ == "__main__":
    main()
