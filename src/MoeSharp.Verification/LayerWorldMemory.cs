using System.Globalization;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// The host memory of a layer run on in-process ranks, checked once before any rank starts. The ranks share the
/// process and allocate at the same time, so what must fit is every rank's bytes together plus what the process holds
/// besides (the token batch, the reassembled output): the layer's own check
/// (<see cref="MoeLayerMemoryEstimate.EnsureFits"/>) sees one rank at a time, and W ranks that each fit could together
/// run the process out of memory. The figures are estimates of the dominant tensors (uniform routing), like
/// <see cref="DispatchMemoryEstimate"/>'s.
/// </summary>
public static class LayerWorldMemory
{
    /// <summary>
    /// One rank's rows for a forward on <paramref name="tokens"/> tokens: the dispatcher's (its input, routed and
    /// output rows of width D) and the experts' two hidden activations per routed row and the shared expert's per own
    /// row, float32.
    /// </summary>
    public static long ForwardRowBytesPerRank(MoeLayerArgs args, LayerLayout layout, long tokens)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(layout);
        long groupTokens = CeilDiv(tokens, layout.Groups);
        long ownRows = CeilDiv(groupTokens, layout.Sp);
        long dispatch = DispatchMemoryEstimate.BytesPerRank(
            DispatcherConfig(args, layout),
            layout.World,
            layout.Sp,
            groupTokens,
            args.Dim,
            DType.Float32
        );
        long routedHidden = MemoryBudget.Multiply(MemoryBudget.Multiply(ownRows, args.TopK), 2L * args.Hidden);
        long sharedHidden = MemoryBudget.Multiply(ownRows, 2L * args.SharedHidden);
        return Add(dispatch, MemoryBudget.Multiply(Add(routedHidden, sharedHidden), sizeof(float)));
    }

    /// <summary>
    /// The largest tensor one rank allocates: a weight tensor of the layer, a dispatch tensor, the routed rows'
    /// hidden activations, or the <c>[tokens, D]</c> batch itself.
    /// </summary>
    public static long LargestTensorElements(MoeLayerArgs args, LayerLayout layout, long tokens)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(layout);
        long groupTokens = CeilDiv(tokens, layout.Groups);
        long entries = MemoryBudget.Multiply(CeilDiv(groupTokens, layout.Sp), args.TopK);
        long largest = Math.Max(
            MoeLayerMemoryEstimate.LargestTensorElements(args, LocalExperts(args, layout)),
            DispatchMemoryEstimate.LargestTensorElements(
                DispatcherConfig(args, layout),
                layout.World,
                layout.Sp,
                groupTokens,
                args.Dim
            )
        );
        largest = Math.Max(largest, MemoryBudget.Multiply(entries, args.Hidden));
        return Math.Max(largest, MemoryBudget.Multiply(tokens, args.Dim));
    }

    /// <summary>The routed experts one rank of <paramref name="layout"/> holds (E / W).</summary>
    public static int LocalExperts(MoeLayerArgs args, LayerLayout layout)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(layout);
        return Math.Max(1, args.NumExperts / Math.Max(1, layout.World));
    }

    /// <summary>
    /// Throws a <see cref="SizeLimitException"/> before any rank starts when a tensor of the run cannot be indexed,
    /// or when the host must hold more than it has available: <c>W × perRankBytes + sharedBytes</c> with the ranks'
    /// tensors on the host, <c>sharedBytes</c> alone when they live on a device.
    /// </summary>
    /// <param name="layout">The in-process ranks.</param>
    /// <param name="perRankBytes">One rank's bytes.</param>
    /// <param name="sharedBytes">Bytes the process holds besides the ranks' (inputs, reassembled outputs).</param>
    /// <param name="largestTensorElements">The run's largest tensor.</param>
    /// <param name="ranksOnHost">Whether the ranks' tensors live in host memory.</param>
    /// <param name="what">Names the run and where its sizes come from, e.g. <c>the MoE layer of config.json (E 8, D
    /// 64, H 128) on 16 tokens</c>.</param>
    /// <param name="availableBytes">The host bytes available; null reads them
    /// (<see cref="MemoryBudget.AvailableHostBytes"/>).</param>
    public static void EnsureFits(
        LayerLayout layout,
        long perRankBytes,
        long sharedBytes,
        long largestTensorElements,
        bool ranksOnHost,
        string what,
        long? availableBytes = null
    )
    {
        ArgumentNullException.ThrowIfNull(layout);
        MemoryBudget.EnsureTensorFits(largestTensorElements, $"one tensor of {what} ({layout})");
        long ranks = ranksOnHost ? MemoryBudget.Multiply(perRankBytes, layout.World) : 0;
        long needed = Add(ranks, sharedBytes);
        long available = availableBytes ?? MemoryBudget.AvailableHostBytes();
        if (needed <= available)
            return;
        string split = ranksOnHost
            ? string.Create(
                CultureInfo.InvariantCulture,
                $"{layout.World} in-process ranks ({layout}) of {MemoryBudget.FormatBytes(perRankBytes)} each"
                    + $" and {MemoryBudget.FormatBytes(sharedBytes)} besides"
            )
            : $"the inputs and outputs besides the ranks' device memory ({layout})";
        throw new SizeLimitException(
            $"needs {MemoryBudget.FormatBytes(needed)} of host memory for {split}: {what}, "
                + $"{MemoryBudget.FormatBytes(available)} available",
            needed,
            available
        );
    }

    /// <summary>
    /// Whether ranks that compute on <paramref name="compute"/> (the host when null) keep their tensors in host
    /// memory: everywhere but CUDA, since ILGPU's CPU accelerator allocates its "device" tensors on the host.
    /// </summary>
    public static bool RanksOnHost(ComputeOptions? compute) => compute is null || compute.Device != DeviceKind.Cuda;

    private static TokenDispatcherConfig DispatcherConfig(MoeLayerArgs args, LayerLayout layout) =>
        new(Math.Max(1, args.NumExperts), Math.Max(1, args.TopK))
        {
            Layout = layout.Layout,
            Sharding = layout.Sharding,
            ExpertAlignment = layout.Alignment,
        };

    private static long CeilDiv(long a, long b) => b <= 0 ? a : (a + b - 1) / b;

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
