namespace MoeSharp.Dispatch;

/// <summary>How tokens are laid out over the ranks of an SP group before and after the layer.</summary>
public enum SequenceLayout
{
    /// <summary>
    /// The seed: every SP rank holds all T tokens (<c>x: [T, D]</c>); each works on its shard and its combine
    /// output is <c>[T, D]</c> with only its shard's rows filled, so the SP group sums the outputs.
    /// </summary>
    Replicated,

    /// <summary>
    /// Tokens arrive already split (<c>x: [T_s, D]</c>, the rank's shard) and the output stays split: no
    /// gather before the layer and no reduce after it, two all-to-alls per layer in total.
    /// </summary>
    Sharded,
}
