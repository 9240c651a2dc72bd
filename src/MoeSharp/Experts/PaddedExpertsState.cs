using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>
/// What a padded experts forward (<see cref="IPaddedExpertKernels"/>) keeps for its backward: the layout, the padded
/// bfloat16 input rows, the stacked float32 gate-and-up products, the bfloat16 activation and the weights' bfloat16
/// copies (read again by the backward).
/// </summary>
/// <param name="Layout">The padded groups.</param>
/// <param name="Input">x padded: [G·capacity, D] bfloat16.</param>
/// <param name="GateUp">x·[w1; w3]ᵀ: [G·capacity, 2H] float32.</param>
/// <param name="Activation">silu(g) ⊙ u: [G·capacity, H] bfloat16.</param>
/// <param name="GateUpWeights">[w1; w3] per expert: [G, 2H, D] bfloat16.</param>
/// <param name="DownWeights">w2: [G, D, H] bfloat16.</param>
/// <param name="OwnsWeights">Whether the weights' copies are this forward's (else the experts' persistent
/// copies, which stay when the state is released).</param>
internal sealed record PaddedExpertsState(
    PaddedGroups Layout,
    Tensor Input,
    Tensor GateUp,
    Tensor Activation,
    Tensor GateUpWeights,
    Tensor DownWeights,
    bool OwnsWeights
)
{
    /// <summary>
    /// Whether a dispatch placed the input rows (<see cref="GroupedExperts.ForwardPlaced"/>): the input is the
    /// dispatch's (not in <see cref="Tensors"/>), the output stays padded, and the backward takes dy padded in
    /// bfloat16 and returns dx padded.
    /// </summary>
    public bool Placed { get; init; }

    /// <summary>Every tensor this forward owns, to return to the allocator once the backward no longer needs
    /// them.</summary>
    public Tensor[] Tensors =>
        [
            Layout.Table,
            .. Placed ? Array.Empty<Tensor>() : [Input],
            GateUp,
            Activation,
            .. OwnsWeights ? [GateUpWeights, DownWeights] : Array.Empty<Tensor>(),
        ];
}
