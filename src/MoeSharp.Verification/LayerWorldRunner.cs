using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Runs one forward and backward of a <see cref="MoeLayer"/> over a token batch on in-process ranks and
/// reassembles the per-rank pieces in global token order. The batch <c>[N, D]</c> is split into
/// <see cref="LayerLayout.Groups"/> consecutive data-parallel chunks (balanced); each chunk is replicated on
/// its SP group or sharded over it.
/// </summary>
public static class LayerWorldRunner
{
    /// <summary>Everything one run produced, in global token order.</summary>
    /// <param name="Out">[N, D].</param>
    /// <param name="TopScores">[N, K].</param>
    /// <param name="ExpertIds">[N, K] int64.</param>
    /// <param name="TokensPerExpert">[E] int64, summed over ranks.</param>
    /// <param name="Grads">Golden-named gradients: <c>x</c> [N, D] and every weight (experts gathered to [E,
    /// …]).</param>
    public sealed record Result(
        Tensor Out,
        Tensor TopScores,
        Tensor ExpertIds,
        Tensor TokensPerExpert,
        IReadOnlyDictionary<string, Tensor> Grads
    );

    /// <summary>
    /// Rows <c>[start, start + count)</c> of data-parallel group <paramref name="group"/> of <paramref name="groups"/>
    /// over N tokens.
    /// </summary>
    public static (int Start, int Count) GroupRows(int tokens, int groups, int group)
    {
        SequenceShard s = SequenceShard.For(SpShardingPolicy.Balanced, tokens, groups, group);
        return (s.Start, s.RealRows);
    }

    /// <summary>
    /// Creates the layer of one rank for <paramref name="layout"/>, on the host or on <paramref name="device"/> (there
    /// with bfloat16 product inputs when <paramref name="bfloat16Products"/>). Profiling decorators, when given, wrap
    /// the device's kernels and are used in their place. <paramref name="collectTraffic"/> turns on the dispatcher's
    /// traffic telemetry (<see cref="TokenDispatcherConfig.CollectTraffic"/>); <paramref name="wire"/> sets how
    /// dispatch moves the rows (<see cref="TokenDispatcherConfig.WireFormat"/>).
    /// </summary>
    public static MoeLayer CreateLayer(
        MoeLayerArgs args,
        bool scoreBeforeExperts,
        LayerLayout layout,
        ParallelGroups? groups,
        DeviceRank? device = null,
        bool bfloat16Products = false,
        ProfilingMoeKernels? dispatchProfile = null,
        ProfilingLayerKernels? layerProfile = null,
        bool collectTraffic = false,
        RowWireFormat wire = RowWireFormat.Native
    )
    {
        if (bfloat16Products && device is null)
            throw new ArgumentException(
                "bfloat16 products need a device backend (--device cuda or ilgpu-cpu)",
                nameof(bfloat16Products)
            );
        var config = new TokenDispatcherConfig(args.NumExperts, args.TopK)
        {
            ScoreBeforeExperts = scoreBeforeExperts,
            Layout = layout.Layout,
            Sharding = layout.Sharding,
            ExpertAlignment = layout.Alignment,
            CollectTraffic = collectTraffic,
            WireFormat = wire,
        };
        IMoeKernels? dispatchKernels = dispatchProfile ?? (IMoeKernels?)device?.Backend.Kernels;
        ILayerKernels? layerKernels = layerProfile ?? (ILayerKernels?)device?.Backend.LayerKernels(bfloat16Products);
        return groups is null
            ? new MoeLayer(args, new LocalTokenDispatcher(config, dispatchKernels), null, layerKernels)
            : new MoeLayer(
                args,
                new AllToAllTokenDispatcher(config, groups, dispatchKernels),
                groups.World,
                layerKernels
            );
    }

    /// <summary>
    /// This rank's input rows: its group's chunk (replicated) or its shard of it (sharded), with T of the group
    /// and the global index of the rank's first own token.
    /// </summary>
    public static (Tensor X, int GroupTokens, int OwnGlobalStart) RankRows(Tensor all, LayerLayout layout, int rank)
    {
        int g = rank / layout.Sp,
            s = rank % layout.Sp;
        var (groupStart, groupCount) = GroupRows(all.Rows, layout.Groups, g);
        SequenceShard shard = SequenceShard.For(layout.Sharding, groupCount, layout.Sp, s);
        return layout.Layout == SequenceLayout.Replicated
            ? (Rows(all, groupStart, groupCount), groupCount, groupStart + shard.Start)
            : (Rows(all, groupStart + shard.Start, shard.RealRows), groupCount, groupStart + shard.Start);
    }

    /// <summary>Forward and backward of the layer on <paramref name="layout"/>.</summary>
    /// <param name="args">Layer options.</param>
    /// <param name="scoreBeforeExperts">Where scores multiply.</param>
    /// <param name="weights">Golden-named weights (all E experts).</param>
    /// <param name="x">[N, D].</param>
    /// <param name="gradOut">[N, D].</param>
    /// <param name="layout">Where to run.</param>
    /// <param name="timeout">Collective timeout.</param>
    /// <param name="compute">Where each rank's layer runs (the host when null); results come back as host
    /// tensors.</param>
    /// <param name="wire">How dispatch moves the rows (<see cref="TokenDispatcherConfig.WireFormat"/>).</param>
    public static Result Run(
        MoeLayerArgs args,
        bool scoreBeforeExperts,
        IEnumerable<KeyValuePair<string, Tensor>> weights,
        Tensor x,
        Tensor gradOut,
        LayerLayout layout,
        TimeSpan? timeout = null,
        ComputeOptions? compute = null,
        RowWireFormat wire = RowWireFormat.Native
    )
    {
        var weightList = weights.ToList();
        int n = x.Rows,
            d = args.Dim,
            k = args.TopK;
        EnsureMemoryFits(
            args,
            layout,
            n,
            compute,
            $"the MoE layer (E {args.NumExperts}, D {d}, H {args.Hidden}, shared H {args.SharedHidden}) on {n} tokens"
        );
        RankResult[] ranks = layout.RunRanks(compute, timeout, RunRank);

        var output = Tensor.Zeros(DType.Float32, n, d);
        var gradX = Tensor.Zeros(DType.Float32, n, d);
        var topScores = Tensor.Zeros(DType.Float32, n, k);
        var expertIds = Tensor.Zeros(DType.Int64, n, k);
        var tokensPerExpert = Tensor.Zeros(DType.Int64, args.NumExperts);
        for (int r = 0; r < ranks.Length; r++)
        {
            RankResult rr = ranks[r];
            // Replicated: every SP rank holds the group's full output; sharded: its shard.
            rr.Out.AsSpan<float>().CopyTo(output.AsSpan<float>().Slice(rr.OutGlobalStart * d));
            rr.GradX.AsSpan<float>().CopyTo(gradX.AsSpan<float>().Slice(rr.OutGlobalStart * d));
            rr.TopScores.AsSpan<float>().CopyTo(topScores.AsSpan<float>().Slice(rr.OwnGlobalStart * k));
            rr.ExpertIds.AsSpan<long>().CopyTo(expertIds.AsSpan<long>().Slice(rr.OwnGlobalStart * k));
            Span<long> counts = tokensPerExpert.AsSpan<long>();
            ReadOnlySpan<long> mine = rr.TokensPerExpert.AsSpan<long>();
            for (int e = 0; e < counts.Length; e++)
                counts[e] += mine[e];
        }
        var grads = new Dictionary<string, Tensor>(ranks[0].WeightGrads) { ["x"] = gradX };
        return new Result(output, topScores, expertIds, tokensPerExpert, grads);

        RankResult RunRank(ParallelGroups? groups, DeviceRank? device)
        {
            int rank = groups?.World.Rank ?? 0;
            MoeLayer layer = CreateLayer(args, scoreBeforeExperts, layout, groups, device, wire: wire);
            MoeLayerCheckpoint.Load(layer, weightList);
            var (rankX, groupTokens, ownGlobal) = RankRows(x, layout, rank);
            var (groupStart, _) = GroupRows(n, layout.Groups, rank / layout.Sp);
            int outStart = layout.Layout == SequenceLayout.Replicated ? groupStart : ownGlobal;
            Tensor rankGradOut = Rows(gradOut, outStart, rankX.Rows);
            Tensor Upload(Tensor t) => device?.Upload(t) ?? t;
            Tensor y = layer.Forward(Upload(rankX), layout.Layout == SequenceLayout.Sharded ? groupTokens : null);
            var routing = layer.LastRouting!;
            MoeLayerGradients g = layer.Backward(Upload(rankGradOut));

            // Weight gradients with all experts, gathered like the weights themselves.
            var gradLayer = CreateLayer(args, scoreBeforeExperts, layout, groups, device);
            void Copy(Tensor from, Tensor to) => layer.Kernels.Dispatch.Rows.CopyRows(from, 0, to, 0, from.Rows);
            Copy(g.GradGateWeight, gradLayer.Router.GateWeight);
            Copy(g.GradW1, gradLayer.Experts.W1);
            Copy(g.GradW2, gradLayer.Experts.W2);
            Copy(g.GradW3, gradLayer.Experts.W3);
            if (gradLayer.Shared is { } shared)
            {
                Copy(g.GradSharedW1!, shared.W1);
                Copy(g.GradSharedW2!, shared.W2);
                Copy(g.GradSharedW3!, shared.W3);
            }
            var weightGrads = MoeLayerCheckpoint
                .StateDict(gradLayer)
                .Where(kv => kv.Key != MoeLayerCheckpoint.ExpertBias)
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            return new RankResult(
                y.ToHost(),
                g.GradX.ToHost(),
                routing.TopScores.ToHost(),
                routing.ExpertIds.ToHost(),
                routing.TokensPerExpert,
                ownGlobal,
                outStart,
                weightGrads
            );
        }
    }

    /// <summary>
    /// One rank's bytes in <see cref="Run"/> on <paramref name="tokens"/> tokens: its layer's weights, their gradients
    /// and the gradient layer they are copied into (E / W experts each), the gradients gathered to all E experts, and
    /// the forward's rows twice (the backward's are as many).
    /// </summary>
    public static long BytesPerRank(MoeLayerArgs args, LayerLayout layout, long tokens)
    {
        ArgumentNullException.ThrowIfNull(args);
        long local = MoeLayerMemoryEstimate.ParameterBytesPerRank(args, LayerWorldMemory.LocalExperts(args, layout));
        long gathered = MoeLayerMemoryEstimate.ParameterBytesPerRank(args, args.NumExperts);
        long rows = LayerWorldMemory.ForwardRowBytesPerRank(args, layout, tokens);
        return Add(Add(MemoryBudget.Multiply(local, 3), gathered), MemoryBudget.Multiply(rows, 2));
    }

    /// <summary>
    /// Checks, before any rank starts, that <see cref="Run"/>'s in-process ranks fit in host memory together
    /// (<see cref="LayerWorldMemory.EnsureFits"/>): every rank's <see cref="BytesPerRank"/> on the host, and in any
    /// case the reassembled outputs, input gradient and routing.
    /// </summary>
    /// <param name="args">The layer.</param>
    /// <param name="layout">Where it runs.</param>
    /// <param name="tokens">N, the batch's rows.</param>
    /// <param name="compute">Where the ranks' tensors live (the host when null).</param>
    /// <param name="what">Names the layer and where its sizes come from, for the message.</param>
    /// <exception cref="SizeLimitException">A tensor cannot be indexed or the ranks do not fit.</exception>
    public static void EnsureMemoryFits(
        MoeLayerArgs args,
        LayerLayout layout,
        long tokens,
        ComputeOptions? compute,
        string what
    )
    {
        ArgumentNullException.ThrowIfNull(args);
        long outputs = MemoryBudget.Multiply(tokens, 2L * args.Dim * sizeof(float) + 12L * args.TopK);
        LayerWorldMemory.EnsureFits(
            layout,
            BytesPerRank(args, layout, tokens),
            outputs,
            LayerWorldMemory.LargestTensorElements(args, layout, tokens),
            LayerWorldMemory.RanksOnHost(compute),
            what
        );
    }

    /// <summary>A copy of rows <c>[start, start + count)</c>.</summary>
    public static Tensor Rows(Tensor t, int start, int count)
    {
        int w = t.RowLength;
        var result = Tensor.Uninitialized(t.DType, count, w);
        int size = t.DType.SizeOf();
        t.AsBytes().Slice(start * w * size, count * w * size).CopyTo(result.AsBytes());
        return result;
    }

    private sealed record RankResult(
        Tensor Out,
        Tensor GradX,
        Tensor TopScores,
        Tensor ExpertIds,
        Tensor TokensPerExpert,
        int OwnGlobalStart,
        int OutGlobalStart,
        Dictionary<string, Tensor> WeightGrads
    );

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
