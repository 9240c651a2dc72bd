using MoeSharp.Compute;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Experts;

/// <summary>
/// The padded experts' persistent bfloat16 weights: <c>[w1; w3]</c> stacked per expert <c>[E, 2H, D]</c> and w2
/// <c>[E, D, H]</c>, with the rule that says when they match the float32 weights.
/// </summary>
/// <remarks>
/// Validity is a version count: <see cref="MarkStale"/> (any write of the float32 weights that does not also write the
/// copies: <see cref="GroupedExperts.MarkWeightsChanged"/>, checkpoint loads, an optimizer step without the fused
/// kernel) moves the version on; each of the three parts records the version it was last written at, by the forward's
/// cast (<see cref="MarkAllWritten"/>) or by <see cref="AdamW"/> through the parameter's <see cref="BFloat16Shadow"/>.
/// The copies are read only when every part is at the current version, so a part AdamW skipped, or weights written
/// after the last cast, make the forward cast again.
/// </remarks>
internal sealed class BFloat16WeightCopies
{
    private const int W1 = 0,
        W2 = 1,
        W3 = 2;
    private readonly long[] _writtenAt = [-1, -1, -1];
    private long _version;

    public BFloat16WeightCopies(Tensor gateUp, Tensor down)
    {
        GateUp = gateUp;
        Down = down;
    }

    /// <summary>[w1; w3] per expert: [E, 2H, D] bfloat16.</summary>
    public Tensor GateUp { get; }

    /// <summary>w2: [E, D, H] bfloat16.</summary>
    public Tensor Down { get; }

    /// <summary>Whether every part was written from the current float32 weights.</summary>
    public bool IsCurrent => _writtenAt[W1] == _version && _writtenAt[W2] == _version && _writtenAt[W3] == _version;

    /// <summary>The float32 weights changed without the copies.</summary>
    public void MarkStale() => _version++;

    /// <summary>The forward cast all three parts from the current weights.</summary>
    public void MarkAllWritten() => Array.Fill(_writtenAt, _version);

    /// <summary>Lets AdamW keep the copies current: w1 into the gate rows, w3 into the up rows, w2 whole.</summary>
    public void Attach(Parameter w1, Parameter w2, Parameter w3, int experts, int hidden, int dim)
    {
        int block = hidden * dim;
        w1.Shadow = Shadow(new BFloat16CopyLayout(GateUp, block, 2 * block, 0), W1);
        w3.Shadow = Shadow(new BFloat16CopyLayout(GateUp, block, 2 * block, block), W3);
        w2.Shadow = Shadow(new BFloat16CopyLayout(Down, experts * block, experts * block, 0), W2);
    }

    private BFloat16Shadow Shadow(BFloat16CopyLayout layout, int part) =>
        new(layout, () => _writtenAt[part] = _version, MarkStale);
}
