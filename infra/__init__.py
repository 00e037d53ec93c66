"""The CDK app and its constructs.

Every path to a synthesis (the CDK CLI running `infra.app`, local mode, the tests) imports this
package before aws_cdk starts jsii's Node process: the project runs on Node 20, whose end-of-life
banner jsii would otherwise print (as raw bytes) on every synthesis.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
