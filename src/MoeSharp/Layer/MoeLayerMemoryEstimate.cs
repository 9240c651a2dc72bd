using System.Globalization;
using MoeSharp.Tensors;

namespace MoeSharp.Layer;

/// <summary>
/// The MoE layer's own tensors on one rank, sized in 64 bits before anything is allocated: the router's gate
/// <c>[E, D]</c>, the local experts' <c>W1, W3 [E_local, H, D]</c> and <c>W2 [E_local, D, H]</c>, the shared expert's
/// three
/// <c>[H_s, D]</c> matrices and its gate <c>[1, D]</c>, all float32. The dispatcher's rows are
/// <see cref="Dispatch.DispatchMemoryEstimate"/>'s.
/// </summary>
public static class MoeLayerMemoryEstimate
{
    /// <summary>Host estimates at or below this are not checked against the available memory (reading it costs a file
    /// read).</summary>
    private const long MemoryCheckThresholdBytes = 1L << 30;

    /// <summary>Bytes of the layer's parameters on one rank (saturating at <see cref="long.MaxValue"/>).</summary>
    /// <param name="args">The layer's shape.</param>
    /// <param name="numLocalExperts">E_local: the routed experts this rank holds (E / EP).</param>
    public static long ParameterBytesPerRank(MoeLayerArgs args, int numLocalExperts)
    {
        ArgumentNullException.ThrowIfNull(args);
        long experts = MemoryBudget.Multiply(ExpertElements(args, numLocalExperts), 3);
        long shared = MemoryBudget.Multiply(MemoryBudget.Multiply(args.SharedHidden, args.Dim), 3);
        long gates = MemoryBudget.Multiply(args.NumExperts, args.Dim) + (args.SharedExpertGate ? args.Dim : 0);
        return MemoryBudget.Multiply(Add(Add(experts, shared), gates), sizeof(float));
    }

    /// <summary>Bytes of a training rank: the parameters, their gradients and AdamW's two moments (four
    /// copies).</summary>
    /// <param name="args">The layer's shape.</param>
    /// <param name="numLocalExperts">E_local, the experts on this rank.</param>
    public static long TrainingBytesPerRank(MoeLayerArgs args, int numLocalExperts) =>
        MemoryBudget.Multiply(ParameterBytesPerRank(args, numLocalExperts), 4);

    /// <summary>Elements of the layer's largest tensor on one rank (one expert weight tensor, the gate or a shared
    /// matrix).</summary>
    /// <param name="args">The layer's shape.</param>
    /// <param name="numLocalExperts">E_local, the experts on this rank.</param>
    public static long LargestTensorElements(MoeLayerArgs args, int numLocalExperts)
    {
        ArgumentNullException.ThrowIfNull(args);
        return Math.Max(
            ExpertElements(args, numLocalExperts),
            Math.Max(
                MemoryBudget.Multiply(args.NumExperts, args.Dim),
                MemoryBudget.Multiply(args.SharedHidden, args.Dim)
            )
        );
    }

    /// <summary>
    /// Throws a <see cref="SizeLimitException"/> (needed and available bytes) before the layer allocates when one of
    /// its
    /// tensors cannot be indexed or, on the host, its parameters exceed the available memory.
    /// </summary>
    /// <param name="args">The layer's shape.</param>
    /// <param name="numLocalExperts">E_local, the experts on this rank.</param>
    /// <param name="onHost">Whether the weights live in host memory (the memory check applies).</param>
    /// <param name="rank">This rank, for the message.</param>
    public static void EnsureFits(MoeLayerArgs args, int numLocalExperts, bool onHost, int rank)
    {
        string shape = string.Create(
            CultureInfo.InvariantCulture,
            $"the MoE layer's weights (E {args.NumExperts}, {numLocalExperts} local, D {args.Dim}, H {args.Hidden}, "
                + $"shared H {args.SharedHidden}) on rank {rank}"
        );
        MemoryBudget.EnsureTensorFits(LargestTensorElements(args, numLocalExperts), shape);
        long bytes = ParameterBytesPerRank(args, numLocalExperts);
        if (onHost && bytes > MemoryCheckThresholdBytes)
            MemoryBudget.EnsureHostFits(bytes, $"for {shape}");
    }

    private static long ExpertElements(MoeLayerArgs args, int numLocalExperts) =>
        MemoryBudget.Multiply(MemoryBudget.Multiply(numLocalExperts, args.Hidden), args.Dim);

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
