using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Layer;

/// <summary>
/// One Mixture-of-Experts layer on one rank (torchtitan's <c>MoE</c>): token-choice top-k router, this rank's
/// grouped SwiGLU experts (global ids <c>[EpRank·E/S, (EpRank+1)·E/S)</c>), an optional shared expert and a
/// <see cref="TokenDispatcher"/> that moves rows between ranks. Forward and backward.
/// </summary>
/// <remarks>
/// <para>
/// Forward: the router scores this rank's own tokens (the SP shard in the replicated layout, <c>x</c> itself
/// in the sharded one; routing is row-wise, so the result is that of routing every row); dispatch; experts;
/// combine, with the shared expert computed on the rank's own rows while the combine exchange is in flight;
/// in the replicated layout the SP group's partial outputs are summed.
/// </para>
/// <para>
/// Determinism: every token's output and input gradient is computed row-wise and summed in ascending expert
/// id, so they are bitwise identical for every EP size, SP size, sharding policy and layout. Weight
/// gradients reduce over tokens as one FMA chain in global token order: a routed expert's rows arrive in
/// that order, and the gate and shared-expert gradients are chained through the ranks in rank order
/// (ranks hold consecutive token blocks), so they too are bitwise those of one rank running every token
/// (when no SP pad rows reach an expert's reduction, i.e. balanced sharding or T divisible by SP).
/// </para>
/// <para>
/// Data parallelism: with W ranks and SP size sp there are W/sp data-parallel groups, each with its own
/// tokens; every rank belongs to the one EP group, so an expert's gradient sums over all groups' tokens,
/// and the gate and shared-expert gradients are summed over all ranks.
/// </para>
/// </remarks>
public sealed class MoeLayer
{
    private readonly IProcessGroup? _world;
    private readonly ExpertLoadBalancer? _balancer;
    private ForwardContext? _saved;

    /// <summary>
    /// Creates a layer on the dispatcher's rank, with zero weights (load them with
    /// <see cref="MoeLayerCheckpoint"/> or write the tensors).
    /// </summary>
    /// <param name="args">Layer shape and routing options.</param>
    /// <param name="dispatcher">Routes rows between ranks; its E and K must match <paramref name="args"/>.</param>
    /// <param name="world">
    /// The EP group the dispatcher runs on (every rank of the world), for the all-reduces of the gate and
    /// shared-expert gradients and the expert load; null for a single rank.
    /// </param>
    /// <exception cref="ArgumentException">E, K or the group do not match the dispatcher, or the router options are invalid.</exception>
    public MoeLayer(MoeLayerArgs args, TokenDispatcher dispatcher, IProcessGroup? world)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(dispatcher);
        if (dispatcher.Config.NumExperts != args.NumExperts || dispatcher.Config.TopK != args.TopK)
        {
            throw new ArgumentException(
                $"the dispatcher routes E = {dispatcher.Config.NumExperts}, K = {dispatcher.Config.TopK} but the layer has E = {args.NumExperts}, K = {args.TopK}",
                nameof(dispatcher));
        }
        if (world is null ? dispatcher.EpSize != 1 || dispatcher.SpSize != 1 : world.Size != dispatcher.EpSize || world.Rank != dispatcher.EpRank)
        {
            throw new ArgumentException(
                $"the world group (size {world?.Size.ToString() ?? "none"}, rank {world?.Rank.ToString() ?? "none"}) must be the dispatcher's EP group (size {dispatcher.EpSize}, rank {dispatcher.EpRank}, SP size {dispatcher.SpSize})",
                nameof(world));
        }

        Args = args;
        Dispatcher = dispatcher;
        _world = world;
        Router = new TokenChoiceTopKRouter(args.Dim, args.NumExperts, args.TopK, args.ScoreFunc, args.RouteNorm, args.RouteScale,
            args.NumExpertGroups, args.NumLimitedGroups);
        Experts = new GroupedExperts(dispatcher.NumLocalExperts, args.Dim, args.Hidden);
        Shared = args.SharedHidden > 0 ? new SharedExpert(args.Dim, args.SharedHidden) : null;
        _balancer = args.LoadBalancing ? new ExpertLoadBalancer(args.NumExperts) : null;

        var parameters = new List<Parameter>
        {
            new(MoeLayerCheckpoint.GateWeight, Router.GateWeight),
            new(MoeLayerCheckpoint.ExpertsW1, Experts.W1),
            new(MoeLayerCheckpoint.ExpertsW2, Experts.W2),
            new(MoeLayerCheckpoint.ExpertsW3, Experts.W3),
        };
        if (Shared is not null)
        {
            parameters.Add(new Parameter(MoeLayerCheckpoint.SharedW1, Shared.W1));
            parameters.Add(new Parameter(MoeLayerCheckpoint.SharedW2, Shared.W2));
            parameters.Add(new Parameter(MoeLayerCheckpoint.SharedW3, Shared.W3));
        }
        Parameters = parameters;
    }

    /// <summary>A single-rank layer (EP = SP = 1) with a <see cref="LocalTokenDispatcher"/>.</summary>
    /// <param name="args">Layer shape and routing options.</param>
    /// <param name="scoreBeforeExperts">Multiply rows by their score before the experts (else after).</param>
    public static MoeLayer CreateLocal(MoeLayerArgs args, bool scoreBeforeExperts = false)
    {
        ArgumentNullException.ThrowIfNull(args);
        var config = new TokenDispatcherConfig(args.NumExperts, args.TopK) { ScoreBeforeExperts = scoreBeforeExperts };
        return new MoeLayer(args, new LocalTokenDispatcher(config), null);
    }

    /// <summary>A layer on <paramref name="groups"/> with an <see cref="AllToAllTokenDispatcher"/>.</summary>
    /// <param name="args">Layer shape and routing options.</param>
    /// <param name="config">Dispatcher configuration (layout, sharding, alignment, where scores multiply); E and K must match.</param>
    /// <param name="groups">The world (EP group) split into SP groups.</param>
    public static MoeLayer Create(MoeLayerArgs args, TokenDispatcherConfig config, ParallelGroups groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        return new MoeLayer(args, new AllToAllTokenDispatcher(config, groups), groups.World);
    }

    /// <summary>Layer shape and routing options.</summary>
    public MoeLayerArgs Args { get; }

    /// <summary>The dispatcher (its config says where scores multiply, the layout and the sharding).</summary>
    public TokenDispatcher Dispatcher { get; }

    /// <summary>The router; its <see cref="TokenChoiceTopKRouter.GateWeight"/> is <c>[E, D]</c>, replicated on every rank.</summary>
    public TokenChoiceTopKRouter Router { get; }

    /// <summary>This rank's E/S experts.</summary>
    public GroupedExperts Experts { get; }

    /// <summary>The shared expert (replicated on every rank), or null.</summary>
    public SharedExpert? Shared { get; }

    /// <summary>The EP group (every rank), or null for a single rank.</summary>
    internal IProcessGroup? World => _world;

    /// <summary>Global id of this rank's first expert: <c>EpRank · E/S</c>.</summary>
    public int FirstExpert => Dispatcher.EpRank * Dispatcher.NumLocalExperts;

    /// <summary><c>[E]</c> float32 load-balancing bias (replicated), or null without <see cref="MoeLayerArgs.LoadBalancing"/>.</summary>
    public Tensor? ExpertBias => _balancer?.ExpertBias;

    /// <summary><c>[E]</c> int64 tokens per expert this rank routed (its own tokens) since the last <see cref="UpdateExpertBias"/>, or null.</summary>
    public Tensor? TokensPerExpert => _balancer?.TokensPerExpert;

    /// <summary>
    /// The trainable tensors of this rank with golden names: <c>router.gate.weight</c>, <c>experts.w1/w2/w3</c>
    /// (this rank's experts only) and <c>shared.w1/w2/w3</c>. <see cref="Backward"/> writes their gradients.
    /// </summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The last forward's routing of this rank's own tokens (rows <see cref="LastOwnTokenStart"/>… of x), or null before any forward.</summary>
    public RouterOutput? LastRouting => _saved?.Routing;

    /// <summary>Row of the last forward's <c>x</c> where this rank's own tokens start (0 in the sharded layout).</summary>
    public int LastOwnTokenStart => _saved?.OwnStart ?? 0;

    /// <summary>
    /// Forward pass. Collective over the world when there is more than one rank. Keeps what
    /// <see cref="Backward"/> needs (one forward at a time).
    /// </summary>
    /// <param name="x">float32 tokens: <c>[T, D]</c> (replicated layout: every token of the SP group) or <c>[T_s, D]</c> (sharded: this rank's shard).</param>
    /// <param name="totalTokens">T of the whole sequence; needed in the sharded layout with pad-to-multiple sharding and SP &gt; 1.</param>
    /// <returns>Shaped like <paramref name="x"/>: replicated, the full SP-summed output on every SP rank; sharded, this shard's output.</returns>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not float32 <c>[·, D]</c>, or the dispatcher rejects the shard.</exception>
    public Tensor Forward(Tensor x, int? totalTokens = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Args.Dim)
        {
            throw new ArgumentException($"x must be float32 [T, {Args.Dim}]; got {x} (rank {Dispatcher.EpRank})", nameof(x));
        }
        int ownStart = 0, ownRows = x.Rows;
        if (Dispatcher.Config.Layout == SequenceLayout.Replicated)
        {
            SequenceShard shard = SequenceShard.For(Dispatcher.Config.Sharding, x.Rows, Dispatcher.SpSize, Dispatcher.SpRank);
            ownStart = shard.Start;
            ownRows = shard.RealRows;
        }
        Tensor ownX = SliceRows(x, ownStart, ownRows);
        RouterOutput routing = Router.Forward(ownX, ExpertBias);
        _balancer?.Accumulate(routing.TokensPerExpert);

        // The dispatcher reads scores and ids at x's row positions; rows outside the shard are never read.
        Tensor topScores = routing.TopScores, expertIds = routing.ExpertIds;
        if (ownRows != x.Rows)
        {
            topScores = Tensor.Zeros(DType.Float32, x.Rows, Args.TopK);
            expertIds = Tensor.Zeros(DType.Int64, x.Rows, Args.TopK);
            routing.TopScores.AsSpan<float>().CopyTo(topScores.AsSpan<float>().Slice(ownStart * Args.TopK));
            routing.ExpertIds.AsSpan<long>().CopyTo(expertIds.AsSpan<long>().Slice(ownStart * Args.TopK));
        }

        DispatchResult dispatched = Dispatcher.Dispatch(x, topScores, expertIds, totalTokens);
        var counts = new long[dispatched.TokensPerLocalExpert.Length];
        for (int i = 0; i < counts.Length; i++) counts[i] = dispatched.TokensPerLocalExpert[i];
        SwiGluForwardResult expertsForward = Experts.Forward(dispatched.RoutedTokens, counts);

        SwiGluForwardResult? sharedForward = null;
        SharedExpertsFunction? sharedFunction = Shared is null ? null : own =>
        {
            sharedForward = Shared.Forward(own);
            return sharedForward.Output;
        };
        CombineResult combined = Dispatcher.CombineWithState(expertsForward.Output, dispatched.Metadata, x, sharedFunction);
        Tensor output = Dispatcher.ReduceSequenceParallel(combined.Output);

        _saved = new ForwardContext(x, ownX, ownStart, routing, dispatched.Metadata, expertsForward, sharedForward, combined.State, output.ShapeArray());
        return output;
    }

    /// <summary>
    /// Backward pass of the last <see cref="Forward"/>: writes every parameter's gradient (overwriting
    /// <see cref="Parameter.Grad"/>) and returns them with the input gradient. Collective over the world; the
    /// exchanges mirror the forward ones (combine's backward uses dispatch's exchange and vice versa).
    /// </summary>
    /// <param name="gradOutput">Gradient of the loss w.r.t. the forward's output, shaped like it (replicated layout: the same on every SP rank).</param>
    /// <exception cref="InvalidOperationException">No forward pass to differentiate.</exception>
    /// <exception cref="ArgumentException"><paramref name="gradOutput"/> has the wrong shape or dtype.</exception>
    public MoeLayerGradients Backward(Tensor gradOutput)
    {
        ArgumentNullException.ThrowIfNull(gradOutput);
        ForwardContext saved = _saved ?? throw new InvalidOperationException($"Backward needs a Forward first (rank {Dispatcher.EpRank})");
        if (gradOutput.DType != DType.Float32 || !gradOutput.Shape.SequenceEqual(saved.OutputShape))
        {
            throw new ArgumentException(
                $"gradOutput must be float32 [{string.Join(", ", saved.OutputShape)}] like the forward output; got {gradOutput} (rank {Dispatcher.EpRank})",
                nameof(gradOutput));
        }
        int k = Args.TopK, d = Args.Dim, ownRows = saved.OwnX.Rows;

        CombineBackwardResult combineGrad = Dispatcher.CombineBackward(gradOutput, saved.CombineState);
        Tensor gradW1 = GradOf(MoeLayerCheckpoint.ExpertsW1), gradW2 = GradOf(MoeLayerCheckpoint.ExpertsW2), gradW3 = GradOf(MoeLayerCheckpoint.ExpertsW3);
        gradW1.AsSpan<float>().Clear();
        gradW2.AsSpan<float>().Clear();
        gradW3.AsSpan<float>().Clear();
        // Every row an expert processed is on this rank, in global token order: one chain from zero.
        SwiGluGradients expertGrads = Experts.Backward(saved.ExpertsForward, combineGrad.GradRoutedOutput,
            new SwiGluGradients(gradW1, gradW1, gradW2, gradW3));
        DispatchBackwardResult dispatchGrad = Dispatcher.DispatchBackward(expertGrads.GradX, saved.Metadata, saved.X);

        Tensor gradTopScoresAll = (Dispatcher.Config.ScoreBeforeExperts ? dispatchGrad.GradTopScores : combineGrad.GradTopScores)
            ?? throw new InvalidOperationException("the dispatcher returned no score gradient");
        Tensor gradTopScores = SliceRows(gradTopScoresAll, saved.OwnStart, ownRows);
        Tensor gradOwnOutput = SliceRows(gradOutput, saved.OwnStart, ownRows);

        Tensor gradGate = GradOf(MoeLayerCheckpoint.GateWeight);
        var accumulators = new List<Tensor> { gradGate };
        SwiGluGradients? sharedRunning = null;
        if (Shared is not null)
        {
            sharedRunning = new SwiGluGradients(gradGate, GradOf(MoeLayerCheckpoint.SharedW1), GradOf(MoeLayerCheckpoint.SharedW2), GradOf(MoeLayerCheckpoint.SharedW3));
            accumulators.Add(sharedRunning.GradW1);
            accumulators.Add(sharedRunning.GradW2);
            accumulators.Add(sharedRunning.GradW3);
        }
        Tensor? routerGradX = null, sharedGradX = null;
        RankOrderedAccumulation.Run(_world, accumulators, () =>
        {
            routerGradX = Router.Backward(saved.Routing, saved.OwnX, gradTopScores, gradGate).GradX;
            if (Shared is not null) sharedGradX = Shared.Backward(saved.SharedForward!, gradOwnOutput, sharedRunning).GradX;
        });

        // Per row: dispatch terms (ascending expert id), then the router's, then the shared expert's.
        Tensor gradX = dispatchGrad.GradX;
        AddRows(gradX, routerGradX!, saved.OwnStart);
        if (sharedGradX is not null) AddRows(gradX, sharedGradX, saved.OwnStart);
        gradX = Dispatcher.ReduceSequenceParallel(gradX);

        return new MoeLayerGradients(gradX, gradGate, gradW1, gradW2, gradW3,
            sharedRunning?.GradW1, sharedRunning?.GradW2, sharedRunning?.GradW3);
    }

    /// <summary>
    /// Collective over the world: sums the tokens per expert accumulated since the last update over every
    /// rank (each token counted once: a rank counts only its own tokens), applies the aux-loss-free rule
    /// (<see cref="ExpertLoadBalancer.UpdateExpertBias(float, ReadOnlySpan{long})"/>) and resets the counts.
    /// </summary>
    /// <param name="coeff">The bias step size.</param>
    /// <returns>The summed tokens per expert the update used: <c>[E]</c>.</returns>
    /// <exception cref="InvalidOperationException">The layer has no load balancing.</exception>
    public long[] UpdateExpertBias(float coeff)
    {
        ExpertLoadBalancer balancer = _balancer
            ?? throw new InvalidOperationException($"the layer was created without load balancing (MoeLayerArgs.LoadBalancing) (rank {Dispatcher.EpRank})");
        long[] summed = balancer.TokensPerExpert.AsSpan<long>().ToArray();
        _world?.AllReduceSum(summed.AsSpan());
        balancer.UpdateExpertBias(coeff, summed);
        return summed;
    }

    private Tensor GradOf(string name)
    {
        foreach (Parameter p in Parameters)
        {
            if (p.Name == name) return p.Grad;
        }
        throw new InvalidOperationException($"no parameter {name}");
    }

    private static Tensor SliceRows(Tensor t, int start, int rows)
    {
        if (start == 0 && rows == t.Rows) return t;
        int width = t.RowLength;
        var slice = Tensor.Uninitialized(t.DType, rows, width);
        t.AsBytes().Slice(start * width * t.DType.SizeOf(), rows * width * t.DType.SizeOf()).CopyTo(slice.AsBytes());
        return slice;
    }

    private static void AddRows(Tensor into, Tensor rows, int start)
    {
        Span<float> a = into.AsSpan<float>().Slice(start * into.RowLength, rows.ElementCount);
        ReadOnlySpan<float> b = rows.AsSpan<float>();
        for (int i = 0; i < a.Length; i++) a[i] += b[i];
    }

    private sealed record ForwardContext(Tensor X, Tensor OwnX, int OwnStart, RouterOutput Routing, DispatchMetadata Metadata,
        SwiGluForwardResult ExpertsForward, SwiGluForwardResult? SharedForward, CombineState CombineState, int[] OutputShape);
}
