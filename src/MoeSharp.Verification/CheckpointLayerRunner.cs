using System.Diagnostics;
using System.Globalization;
using MoeSharp.Checkpoints;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Runs the MoE block of one decoder layer of a Hugging Face checkpoint forward on in-process ranks: every rank
/// opens the checkpoint itself and reads only the router, the shared expert and its own experts, then runs its rows
/// of <c>x</c> (the layout's data-parallel chunk, replicated or sharded over its SP group); the pieces come back in
/// token order.
/// </summary>
public static class CheckpointLayerRunner
{
    /// <summary>What one run produced.</summary>
    /// <param name="Y">[T, D] float32, in token order.</param>
    /// <param name="TokensPerExpert">[E] tokens routed to each expert, summed over ranks.</param>
    /// <param name="BytesRead">Checkpoint bytes read by all ranks (headers included).</param>
    /// <param name="RankBytes">Bytes of the tensors the ranks needed (their own experts, router, shared expert),
    /// summed.</param>
    /// <param name="Build">Slowest rank's time to build the empty layer (allocating its float32 weights).</param>
    /// <param name="Load">Slowest rank's load time (open, check, read, widen, dequantise).</param>
    /// <param name="Forward">Slowest rank's forward time.</param>
    public sealed record Result(
        Tensor Y,
        long[] TokensPerExpert,
        long BytesRead,
        long RankBytes,
        TimeSpan Build,
        TimeSpan Load,
        TimeSpan Forward
    );

    /// <summary>
    /// Loads layer <paramref name="layer"/> on every rank of <paramref name="layout"/> and runs it on <paramref
    /// name="x"/>.
    /// </summary>
    /// <remarks>
    /// The checks of <see cref="CheckCheckpoint"/> and <see cref="EnsureMemoryFits"/> run first, before any rank
    /// starts.
    /// </remarks>
    /// <exception cref="ArgumentException">The world does not divide the experts, or the ranks do not fit in memory
    /// (a <see cref="SizeLimitException"/>).</exception>
    /// <exception cref="InvalidDataException">The layer is dense or a tensor is missing or mis-shaped (names
    /// both).</exception>
    public static Result Run(
        string directory,
        HfMoeConfig config,
        int layer,
        Tensor x,
        LayerLayout layout,
        ComputeOptions? compute = null,
        TimeSpan? timeout = null
    )
    {
        CheckCheckpoint(directory, config, layer, layout);
        EnsureMemoryFits(config, layout, x.Rows, compute);
        MoeLayerArgs args = config.Args;
        RankResult[] ranks = layout.RunRanks(compute, timeout, RunRank);

        int d = args.Dim;
        var y = Tensor.Zeros(DType.Float32, x.Rows, d);
        var tokensPerExpert = new long[args.NumExperts];
        foreach (RankResult r in ranks)
        {
            r.Y.AsSpan<float>().CopyTo(y.AsSpan<float>().Slice(r.OutStart * d));
            for (int e = 0; e < tokensPerExpert.Length; e++)
                tokensPerExpert[e] += r.TokensPerExpert[e];
        }
        return new Result(
            y,
            tokensPerExpert,
            ranks.Sum(r => r.BytesRead),
            ranks.Sum(r => r.RankBytes),
            ranks.Max(r => r.Build),
            ranks.Max(r => r.Load),
            ranks.Max(r => r.Forward)
        );

        RankResult RunRank(ParallelGroups? groups, DeviceRank? device)
        {
            int rank = groups?.World.Rank ?? 0;
            var clock = Stopwatch.StartNew();
            MoeLayer moe = LayerWorldRunner.CreateLayer(args, scoreBeforeExperts: false, layout, groups, device);
            TimeSpan build = clock.Elapsed;
            clock.Restart();
            long bytesRead,
                rankBytes;
            using (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(directory))
            {
                HfMoeLayerLoader.Load(moe, checkpoint, config, layer);
                bytesRead = checkpoint.BytesRead;
                rankBytes = HfMoeLayerLoader.RankBytes(moe, checkpoint, config, layer);
            }
            TimeSpan load = clock.Elapsed;
            var (rankX, groupTokens, ownGlobal) = LayerWorldRunner.RankRows(x, layout, rank);
            var (groupStart, _) = LayerWorldRunner.GroupRows(x.Rows, layout.Groups, rank / layout.Sp);
            int outStart = layout.Layout == SequenceLayout.Replicated ? groupStart : ownGlobal;
            Tensor input = device?.Upload(rankX) ?? rankX;
            moe.Kernels.Dispatch.Device.Synchronize();
            clock.Restart();
            Tensor output = moe.Forward(input, layout.Layout == SequenceLayout.Sharded ? groupTokens : null);
            moe.Kernels.Dispatch.Device.Synchronize();
            TimeSpan forward = clock.Elapsed;
            Tensor hostY = output.IsOnHost ? output : output.ToHost();
            long[] counts = moe.LastRouting!.TokensPerExpert.AsSpan<long>().ToArray();
            // Replicated: every SP rank holds its group's full output; only the group's first rank reports it.
            bool reports = layout.Layout == SequenceLayout.Sharded || rank % layout.Sp == 0;
            return new RankResult(
                reports ? hostY : Tensor.Zeros(DType.Float32, 0, args.Dim),
                reports ? outStart : 0,
                counts,
                bytesRead,
                rankBytes,
                build,
                load,
                forward
            );
        }
    }

    /// <summary>
    /// Checks, before any rank starts or any weight is allocated, that <paramref name="layout"/> fits the layer and
    /// that the checkpoint holds every tensor of it (headers only: names, shapes and dtypes, no data read).
    /// </summary>
    /// <exception cref="ArgumentException">The world does not divide the experts.</exception>
    /// <exception cref="InvalidDataException">The layer is dense, or a tensor is missing or mis-shaped (names the
    /// checkpoint directory, the layer and the first such tensor).</exception>
    public static void CheckCheckpoint(string directory, HfMoeConfig config, int layer, LayerLayout layout)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layout);
        HfMoeLayerLoader.CheckMoeLayer(config, layer);
        if (config.Args.NumExperts % layout.World != 0)
        {
            throw new ArgumentException(
                $"--world {layout.World} must divide the {config.Args.NumExperts} experts of {config.Source}"
            );
        }
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(directory);
        HfMoeLayerLoader.CheckTensors(checkpoint, config, layer);
    }

    /// <summary>
    /// One rank's bytes for a run on <paramref name="tokens"/> tokens: its share of the layer's weights (E / W experts,
    /// the router and the shared expert, float32) and its rows (<see cref="LayerWorldMemory.ForwardRowBytesPerRank"/>),
    /// in host memory or, on a device, in the device's.
    /// </summary>
    public static long BytesPerRank(HfMoeConfig config, LayerLayout layout, long tokens)
    {
        ArgumentNullException.ThrowIfNull(config);
        MoeLayerArgs args = config.Args;
        long weights = MoeLayerMemoryEstimate.ParameterBytesPerRank(args, LayerWorldMemory.LocalExperts(args, layout));
        long rows = LayerWorldMemory.ForwardRowBytesPerRank(args, layout, tokens);
        return weights > long.MaxValue - rows ? long.MaxValue : weights + rows;
    }

    /// <summary>
    /// Checks, before any rank starts, that the in-process ranks of <paramref name="layout"/> fit in host memory
    /// together (<see cref="LayerWorldMemory.EnsureFits"/>): on the host every rank's <see cref="BytesPerRank"/>, and
    /// in any case the batch <c>x</c>, the reassembled <c>y</c> and the ranks' pieces of it.
    /// </summary>
    /// <exception cref="SizeLimitException">A tensor cannot be indexed or the ranks do not fit; the message gives the
    /// figures, the layout and the config they come from.</exception>
    public static void EnsureMemoryFits(HfMoeConfig config, LayerLayout layout, long tokens, ComputeOptions? compute)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layout);
        MoeLayerArgs a = config.Args;
        long tokenBytes = MemoryBudget.Multiply(MemoryBudget.Multiply(tokens, a.Dim), 3L * sizeof(float));
        string what = string.Create(
            CultureInfo.InvariantCulture,
            $"the MoE layer of {config.Source} (E {a.NumExperts}, D {a.Dim}, H {a.Hidden}, shared H {a.SharedHidden})"
                + $" on {tokens} tokens"
        );
        LayerWorldMemory.EnsureFits(
            layout,
            BytesPerRank(config, layout, tokens),
            tokenBytes,
            LayerWorldMemory.LargestTensorElements(a, layout, tokens),
            LayerWorldMemory.RanksOnHost(compute),
            what
        );
    }

    private sealed record RankResult(
        Tensor Y,
        int OutStart,
        long[] TokensPerExpert,
        long BytesRead,
        long RankBytes,
        TimeSpan Build,
        TimeSpan Load,
        TimeSpan Forward
    );
}
