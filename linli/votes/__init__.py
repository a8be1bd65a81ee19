"""Owner votes and surveys (业主大会表决), tallied by the PRC Civil Code, Article 278."""
