using MoeSharp.Collectives;
using MoeSharp.Compute;
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
/// Determinism (with <see cref="HostLayerKernels"/>): every token's output and input gradient is computed row-wise
/// and summed in ascending expert id, so they are bitwise identical for every EP size, SP size, sharding policy
/// and layout. Weight gradients reduce over tokens as one FMA chain in global token order: a routed expert's rows
/// arrive in that order, and the gate and shared-expert gradients are chained through the ranks in rank order
/// (ranks hold consecutive token blocks), so they too are bitwise those of one rank running every token
/// (when no SP pad rows reach an expert's reduction, i.e. balanced sharding or T divisible by SP).
/// On a device backend (e.g. the CUDA one's <c>IlgpuLayerKernels</c>) the same code runs with the tensors on the
/// device; its products follow cuBLAS's blocking, so results agree with the host within float32 tolerance.
/// </para>
/// <para>
/// Data parallelism: with W ranks and SP size sp there are W/sp data-parallel groups, each with its own
/// tokens; every rank belongs to the one EP group, so an expert's gradient sums over all groups' tokens,
/// and the gate and shared-expert gradients are summed over all ranks.
/// </para>
/// </remarks>
public sealed class MoeLayer : IDisposable
{
    private readonly IProcessGroup? _world;
    private readonly ExpertLoadBalancer? _balancer;
    private readonly ILayerKernels _kernels;

    /// <summary>The last forward's working tensors, which <see cref="Backward"/> reads; ended by the next
    /// forward.</summary>
    private TensorScope? _forwardScope;
    private ForwardContext? _saved;
    private bool _disposed;

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
    /// <param name="kernels">
    /// Where the weights live and the router, experts and gradients run: the device of the dispatcher's kernels.
    /// Null means the host (<see cref="HostLayerKernels"/>), which needs a host dispatcher.
    /// </param>
    /// <exception cref="ArgumentException">
    /// E, K or the group do not match the dispatcher, the router options are invalid, or the kernels are on
    /// another device than the dispatcher's.
    /// </exception>
    /// <exception cref="SizeLimitException">
    /// One of the layer's tensors cannot be indexed or its weights exceed the available host memory
    /// (<see cref="MoeLayerMemoryEstimate"/>); thrown before anything is allocated.
    /// </exception>
    public MoeLayer(MoeLayerArgs args, TokenDispatcher dispatcher, IProcessGroup? world, ILayerKernels? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(dispatcher);
        if (kernels is null && !dispatcher.Kernels.Device.IsHost)
        {
            throw new ArgumentException(
                $"the dispatcher runs on {dispatcher.Kernels.Device.Name}: pass that device's layer kernels (rank "
                    + $"{dispatcher.EpRank})",
                nameof(kernels)
            );
        }
        if (kernels is not null && kernels.Dispatch.Device.Name != dispatcher.Kernels.Device.Name)
        {
            throw new ArgumentException(
                $"the layer kernels run on {kernels.Dispatch.Device.Name} but the dispatcher on "
                    + $"{dispatcher.Kernels.Device.Name} (rank {dispatcher.EpRank})",
                nameof(kernels)
            );
        }
        if (dispatcher.Config.NumExperts != args.NumExperts || dispatcher.Config.TopK != args.TopK)
        {
            throw new ArgumentException(
                $"the dispatcher routes E = {dispatcher.Config.NumExperts}, K = {dispatcher.Config.TopK} but the "
                    + $"layer has E = {args.NumExperts}, K = {args.TopK}",
                nameof(dispatcher)
            );
        }
        if (
            world is null
                ? dispatcher.EpSize != 1 || dispatcher.SpSize != 1
                : world.Size != dispatcher.EpSize || world.Rank != dispatcher.EpRank
        )
        {
            throw new ArgumentException(
                $"the world group (size {world?.Size.ToString() ?? "none"}, rank "
                    + $"{world?.Rank.ToString() ?? "none"}) must be the dispatcher's EP group (size "
                    + $"{dispatcher.EpSize}, rank {dispatcher.EpRank}, SP size {dispatcher.SpSize})",
                nameof(world)
            );
        }

        if (args.SharedExpertGate && args.SharedHidden == 0)
        {
            throw new ArgumentException(
                "a shared expert gate (SharedExpertGate) needs a shared expert (SharedHidden > 0)",
                nameof(args)
            );
        }

        // Sizes before allocation: one SizeLimitException with the figures instead of an overflow or an OOM mid-way.
        MoeLayerMemoryEstimate.EnsureFits(
            args,
            dispatcher.NumLocalExperts,
            (kernels?.Dispatch ?? dispatcher.Kernels).Device.IsHost,
            dispatcher.EpRank
        );

        Args = args;
        Dispatcher = dispatcher;
        _world = world;
        _kernels = kernels ?? new HostLayerKernels(dispatcher.Kernels);
        Router = new TokenChoiceTopKRouter(
            args.Dim,
            args.NumExperts,
            args.TopK,
            args.ScoreFunc,
            args.RouteNorm,
            args.RouteScale,
            args.NumExpertGroups,
            args.NumLimitedGroups,
            _kernels
        )
        {
            ZeroDiscardedGroups = args.ZeroDiscardedGroups,
        };
        Experts = new GroupedExperts(dispatcher.NumLocalExperts, args.Dim, args.Hidden, _kernels);
        Shared = args.SharedHidden > 0 ? new SharedExpert(args.Dim, args.SharedHidden, _kernels) : null;
        SharedGate = args.SharedExpertGate ? _kernels.RentZeros(DType.Float32, 1, args.Dim) : null;
        _balancer = args.LoadBalancing ? new ExpertLoadBalancer(args.NumExperts, _kernels) : null;

        var parameters = new List<Parameter>
        {
            NewParameter(MoeLayerCheckpoint.GateWeight, Router.GateWeight),
            NewParameter(MoeLayerCheckpoint.ExpertsW1, Experts.W1),
            NewParameter(MoeLayerCheckpoint.ExpertsW2, Experts.W2),
            NewParameter(MoeLayerCheckpoint.ExpertsW3, Experts.W3),
        };
        if (Shared is not null)
        {
            parameters.Add(NewParameter(MoeLayerCheckpoint.SharedW1, Shared.W1));
            parameters.Add(NewParameter(MoeLayerCheckpoint.SharedW2, Shared.W2));
            parameters.Add(NewParameter(MoeLayerCheckpoint.SharedW3, Shared.W3));
        }
        if (SharedGate is not null)
            parameters.Add(NewParameter(MoeLayerCheckpoint.SharedGate, SharedGate));
        Parameters = parameters;
        Experts.AttachParameters(parameters[1], parameters[2], parameters[3]);
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
    /// <param name="config">Dispatcher configuration (layout, sharding, alignment, where scores multiply); E and K must
    /// match.</param>
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

    /// <summary>The router; its <see cref="TokenChoiceTopKRouter.GateWeight"/> is <c>[E, D]</c>, replicated on every
    /// rank.</summary>
    public TokenChoiceTopKRouter Router { get; }

    /// <summary>This rank's E/S experts.</summary>
    public GroupedExperts Experts { get; }

    /// <summary>The shared expert (replicated on every rank), or null.</summary>
    public SharedExpert? Shared { get; }

    /// <summary>
    /// The shared expert's sigmoid gate <c>[1, D]</c> float32 (Qwen2-MoE's <c>shared_expert_gate</c>; replicated), or
    /// null:
    /// the shared output of token t is multiplied by <c>sigmoid(x_t · g)</c>.
    /// </summary>
    public Tensor? SharedGate { get; }

    /// <summary>The EP group (every rank), or null for a single rank.</summary>
    internal IProcessGroup? World => _world;

    /// <summary>Where the weights live and the layer's own kernels run (the dispatcher's device).</summary>
    public ILayerKernels Kernels => _kernels;

    /// <summary>Global id of this rank's first expert: <c>EpRank · E/S</c>.</summary>
    public int FirstExpert => Dispatcher.EpRank * Dispatcher.NumLocalExperts;

    /// <summary><c>[E]</c> float32 load-balancing bias (replicated), or null without
    /// <see cref="MoeLayerArgs.LoadBalancing"/>.</summary>
    public Tensor? ExpertBias => _balancer?.ExpertBias;

    /// <summary><c>[E]</c> int64 host tensor: tokens per expert this rank routed (its own tokens) since the last
    /// <see cref="UpdateExpertBias"/>, or null. On a device the counts stay there during the steps; reading this
    /// brings them to the host (one small copy that waits for the device).</summary>
    public Tensor? TokensPerExpert => _balancer?.TokensPerExpert;

    /// <summary>
    /// The trainable tensors of this rank with golden names: <c>router.gate.weight</c>, <c>experts.w1/w2/w3</c>
    /// (this rank's experts only) and <c>shared.w1/w2/w3</c>. <see cref="Backward"/> writes their gradients.
    /// </summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>
    /// The last forward's routing of this rank's own tokens (rows <see cref="LastOwnTokenStart"/>… of x), or null
    /// before any forward; its tensors are on the layer's device and stay valid until the next forward. Its
    /// <see cref="RouterOutput.TokensPerExpert"/> copies the device counts to the host on first read: read it before
    /// the next forward (afterwards it throws unless read before).
    /// </summary>
    public RouterOutput? LastRouting => _saved?.Routing;

    /// <summary>Row of the last forward's <c>x</c> where this rank's own tokens start (0 in the sharded
    /// layout).</summary>
    public int LastOwnTokenStart => _saved?.OwnStart ?? 0;

    /// <summary>
    /// Forward pass. Collective over the world when there is more than one rank. Keeps what
    /// <see cref="Backward"/> needs (one forward at a time).
    /// </summary>
    /// <param name="x">float32 tokens: <c>[T, D]</c> (replicated layout: every token of the SP group) or <c>[T_s,
    /// D]</c> (sharded: this rank's shard).</param>
    /// <param name="totalTokens">T of the whole sequence; needed in the sharded layout with pad-to-multiple sharding
    /// and SP &gt; 1.</param>
    /// <returns>Shaped like <paramref name="x"/>: replicated, the full SP-summed output on every SP rank; sharded, this
    /// shard's output.</returns>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not float32 <c>[·, D]</c>, or the dispatcher rejects
    /// the shard.</exception>
    public Tensor Forward(Tensor x, int? totalTokens = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Args.Dim)
        {
            throw new ArgumentException(
                $"x must be float32 [T, {Args.Dim}]; got {x} (rank {Dispatcher.EpRank})",
                nameof(x)
            );
        }
        if (x.Device != _kernels.Dispatch.Device.Name)
        {
            throw new ArgumentException(
                $"x is on {x.Device} but the layer runs on {_kernels.Dispatch.Device.Name} "
                    + $"(rank {Dispatcher.EpRank})",
                nameof(x)
            );
        }
        EndForwardScope();
        TensorScope scope = _forwardScope = new TensorScope(_kernels.Allocator);
        int ownStart = 0,
            ownRows = x.Rows;
        if (Dispatcher.Config.Layout == SequenceLayout.Replicated)
        {
            SequenceShard shard = SequenceShard.For(
                Dispatcher.Config.Sharding,
                x.Rows,
                Dispatcher.SpSize,
                Dispatcher.SpRank
            );
            ownStart = shard.Start;
            ownRows = shard.RealRows;
        }
        Tensor ownX = SliceRows(x, ownStart, ownRows, scope);
        RouterOutput routing = Router.Forward(ownX, ExpertBias);
        AdoptAll(scope, routing.Scores, routing.TopScores, routing.ExpertIds);
        // Device counts are working tensors like the rest (host ones are the routing's own). Neither they nor the
        // balancer's running total are read here: on one rank the forward's only wait is the dispatcher's count read.
        if (!routing.ExpertCounts.IsOnHost)
            scope.Adopt(routing.ExpertCounts);
        _balancer?.Accumulate(routing);

        // The dispatcher reads scores and ids at x's row positions; rows outside the shard are never read.
        Tensor topScores = routing.TopScores,
            expertIds = routing.ExpertIds;
        if (ownRows != x.Rows)
        {
            topScores = scope.Adopt(_kernels.RentZeros(DType.Float32, x.Rows, Args.TopK))!;
            expertIds = scope.Adopt(_kernels.RentZeros(DType.Int64, x.Rows, Args.TopK))!;
            _kernels.Dispatch.Rows.CopyRows(routing.TopScores, 0, topScores, ownStart, ownRows);
            _kernels.Dispatch.Rows.CopyRows(routing.ExpertIds, 0, expertIds, ownStart, ownRows);
        }

        // The padded experts may have the dispatch write their bfloat16 rows itself (one rank, rows that stay): then
        // combine and the backward passes read and write the experts' padded rows, with no layout pass between.
        DispatchResult dispatched = Dispatcher.DispatchWithPlacement(
            x,
            topScores,
            expertIds,
            totalTokens,
            Experts.RowPlacement
        );
        SwiGluForwardResult expertsForward;
        if (dispatched.ExpertLayout is { } placedLayout)
            expertsForward = Experts.ForwardPlaced(dispatched.RoutedTokens, placedLayout);
        else
        {
            var counts = new long[dispatched.TokensPerLocalExpert.Length];
            for (int i = 0; i < counts.Length; i++)
                counts[i] = dispatched.TokensPerLocalExpert[i];
            expertsForward = Experts.Forward(dispatched.RoutedTokens, counts);
        }

        SwiGluForwardResult? sharedForward = null;
        SharedGateForward? gateForward = null;
        SharedExpertsFunction? sharedFunction = Shared is null
            ? null
            : own =>
            {
                sharedForward = Shared.Forward(own);
                if (SharedGate is null)
                    return sharedForward.Output;
                gateForward = GateSharedOutput(own, sharedForward.Output, scope);
                return gateForward.Gated;
            };
        CombineResult combined = Dispatcher.CombineWithState(
            expertsForward.Output,
            dispatched.Metadata,
            x,
            sharedFunction
        );
        Tensor output = Dispatcher.ReduceSequenceParallel(combined.Output);
        // Everything Backward reads stays until the next forward (Backward may run more than once).
        AdoptAll(scope, dispatched.RoutedTokens, expertsForward.Output, combined.State.CombinedRows);
        AdoptAll(scope, expertsForward.SavedActivations);
        if (sharedForward is not null)
        {
            scope.Adopt(sharedForward.Output);
            AdoptAll(scope, sharedForward.SavedActivations);
            if (!ReferenceEquals(sharedForward.Input, x))
                scope.Adopt(sharedForward.Input);
        }
        if (!ReferenceEquals(output, combined.Output))
            scope.Adopt(combined.Output);

        _saved = new ForwardContext(
            x,
            ownX,
            ownStart,
            routing,
            dispatched.Metadata,
            expertsForward,
            sharedForward,
            gateForward,
            combined.State,
            output.ShapeArray()
        );
        return output;
    }

    /// <summary>
    /// Backward pass of the last <see cref="Forward"/>: writes every parameter's gradient (overwriting
    /// <see cref="Parameter.Grad"/>) and returns them with the input gradient. Collective over the world; the
    /// exchanges mirror the forward ones (combine's backward uses dispatch's exchange and vice versa).
    /// </summary>
    /// <param name="gradOutput">Gradient of the loss w.r.t. the forward's output, shaped like it (replicated layout:
    /// the same on every SP rank).</param>
    /// <exception cref="InvalidOperationException">No forward pass to differentiate.</exception>
    /// <exception cref="ArgumentException"><paramref name="gradOutput"/> has the wrong shape or dtype.</exception>
    public MoeLayerGradients Backward(Tensor gradOutput)
    {
        ArgumentNullException.ThrowIfNull(gradOutput);
        ObjectDisposedException.ThrowIf(_disposed, this);
        ForwardContext saved =
            _saved ?? throw new InvalidOperationException($"Backward needs a Forward first (rank {Dispatcher.EpRank})");
        if (
            gradOutput.DType != DType.Float32
            || !gradOutput.Shape.SequenceEqual(saved.OutputShape)
            || gradOutput.Device != _kernels.Dispatch.Device.Name
        )
        {
            throw new ArgumentException(
                $"gradOutput must be float32 [{string.Join(", ", saved.OutputShape)}] on "
                    + $"{_kernels.Dispatch.Device.Name} like the forward output; got {gradOutput} on "
                    + $"{gradOutput.Device} (rank {Dispatcher.EpRank})",
                nameof(gradOutput)
            );
        }
        int ownRows = saved.OwnX.Rows;
        // The call's working tensors, returned when it ends; never the caller's gradOutput, never the result.
        using var scope = new TensorScope(_kernels.Allocator);
        var adopted = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        void Scratch(Tensor? t)
        {
            if (t is null || ReferenceEquals(t, gradOutput) || !adopted.Add(t))
                return;
            scope.Adopt(t);
        }

        CombineBackwardResult combineGrad = Dispatcher.CombineBackward(gradOutput, saved.CombineState);
        Tensor gradW1 = GradOf(MoeLayerCheckpoint.ExpertsW1);
        Tensor gradW2 = GradOf(MoeLayerCheckpoint.ExpertsW2);
        Tensor gradW3 = GradOf(MoeLayerCheckpoint.ExpertsW3);
        // Every row an expert processed is on this rank, in global token order: one chain from zero gradients (cleared
        // first, or overwritten by the padded experts, which write every expert's matrix).
        SwiGluGradients expertGrads = Experts.BackwardInto(
            saved.ExpertsForward,
            combineGrad.GradRoutedOutput,
            new SwiGluWeightGradients(gradW1, gradW2, gradW3)
        );
        DispatchBackwardResult dispatchGrad = Dispatcher.DispatchBackward(expertGrads.GradX, saved.Metadata, saved.X);
        Scratch(combineGrad.GradRoutedOutput);
        Scratch(expertGrads.GradX);

        Tensor gradTopScoresAll =
            (Dispatcher.Config.ScoreBeforeExperts ? dispatchGrad.GradTopScores : combineGrad.GradTopScores)
            ?? throw new InvalidOperationException("the dispatcher returned no score gradient");
        Scratch(combineGrad.GradTopScores);
        Scratch(dispatchGrad.GradTopScores);
        Tensor gradTopScores = SliceRows(gradTopScoresAll, saved.OwnStart, ownRows, scope);
        Tensor gradOwnOutput = SliceRows(gradOutput, saved.OwnStart, ownRows, scope);

        Tensor gradGate = GradOf(MoeLayerCheckpoint.GateWeight);
        var accumulators = new List<Tensor> { gradGate };
        SwiGluWeightGradients? sharedRunning = null;
        if (Shared is not null)
        {
            sharedRunning = new SwiGluWeightGradients(
                GradOf(MoeLayerCheckpoint.SharedW1),
                GradOf(MoeLayerCheckpoint.SharedW2),
                GradOf(MoeLayerCheckpoint.SharedW3)
            );
            accumulators.Add(sharedRunning.GradW1);
            accumulators.Add(sharedRunning.GradW2);
            accumulators.Add(sharedRunning.GradW3);
        }
        if (SharedGate is not null)
            accumulators.Add(GradOf(MoeLayerCheckpoint.SharedGate));
        Tensor? routerGradX = null,
            sharedGradX = null;
        RankOrderedAccumulation.Run(
            _world,
            _kernels,
            accumulators,
            () =>
            {
                routerGradX = Router.Backward(saved.Routing, saved.OwnX, gradTopScores, gradGate).GradX;
                if (Shared is not null)
                    sharedGradX = SharedBackward(saved, gradOwnOutput, sharedRunning!, scope);
            }
        );

        // Per row: dispatch terms (ascending expert id), then the router's, then the shared expert's.
        Tensor gradX = dispatchGrad.GradX;
        _kernels.Elementwise.AddRows(gradX, saved.OwnStart, routerGradX!);
        Scratch(routerGradX);
        if (sharedGradX is not null)
        {
            _kernels.Elementwise.AddRows(gradX, saved.OwnStart, sharedGradX);
            Scratch(sharedGradX);
        }
        Tensor reduced = Dispatcher.ReduceSequenceParallel(gradX);
        if (!ReferenceEquals(reduced, gradX))
            Scratch(gradX);
        // A dispatcher may hand a tensor straight through (the result aliasing a working tensor): the caller keeps it.
        if (adopted.Contains(reduced))
            scope.Keep(reduced);

        return new MoeLayerGradients(
            reduced,
            gradGate,
            gradW1,
            gradW2,
            gradW3,
            sharedRunning?.GradW1,
            sharedRunning?.GradW2,
            sharedRunning?.GradW3
        );
    }

    /// <summary>
    /// Collective over the world: sums the tokens per expert accumulated since the last update over every
    /// rank (each token counted once: a rank counts only its own tokens), applies the aux-loss-free rule
    /// (<see cref="ExpertLoadBalancer.UpdateExpertBias(float, ReadOnlySpan{long})"/>) and resets the counts.
    /// </summary>
    /// <param name="coeff">The bias step size.</param>
    /// <returns>The summed tokens per expert the update used: <c>[E]</c>.</returns>
    /// <remarks>On a device this reads the counts of the forwards since the last update (one small copy that
    /// waits for the device): call it after the step, outside forward and backward.</remarks>
    /// <exception cref="InvalidOperationException">The layer has no load balancing.</exception>
    public long[] UpdateExpertBias(float coeff)
    {
        ExpertLoadBalancer balancer =
            _balancer
            ?? throw new InvalidOperationException(
                $"the layer was created without load balancing "
                    + $"(MoeLayerArgs.LoadBalancing) (rank {Dispatcher.EpRank})"
            );
        long[] summed = balancer.TokensPerExpert.AsSpan<long>().ToArray();
        _world?.AllReduceSum(summed.AsSpan());
        balancer.UpdateExpertBias(coeff, summed);
        return summed;
    }

    /// <summary>
    /// Qwen2-MoE's gated shared output <c>sigmoid(x · gᵀ) ⊙ shared(x)</c>, row-wise (so bitwise the same in every
    /// layout).
    /// </summary>
    private SharedGateForward GateSharedOutput(Tensor own, Tensor sharedOutput, TensorScope scope)
    {
        int rows = own.Rows;
        Tensor gate = scope.Rent(DType.Float32, rows, 1);
        _kernels.Gemm.MatMulTransposeB(own, SharedGate!, gate, new GemmShape(rows, 1, Args.Dim));
        _kernels.Router.Score(ScoreFunction.Sigmoid, gate, gate);
        var identityRows = new int[rows];
        for (int i = 0; i < rows; i++)
            identityRows[i] = i;
        Tensor hostIdentity = Tensor.FromArray(identityRows, rows);
        // The host device hands the tensor itself back; only a device's copy belongs to the scope.
        Tensor identity = _kernels.Dispatch.Device.ToDevice(hostIdentity);
        if (!ReferenceEquals(identity, hostIdentity))
            scope.Adopt(identity);
        Tensor gated = scope.Rent(DType.Float32, rows, Args.Dim);
        _kernels.Dispatch.Rows.GatherRows(sharedOutput, 0, identity, gate.Reshape(rows), gated);
        return new SharedGateForward(gate, identity, gated);
    }

    /// <summary>
    /// The shared expert's backward, through its gate when it has one: with <c>s = sigmoid(x · gᵀ)</c> and
    /// <c>u = shared(x)</c>, <c>du = s ⊙ dy</c>, <c>dz = (dy · u) s (1 − s)</c>, <c>dg += dzᵀ x</c>, <c>dx += dz g</c>.
    /// Weight gradients continue the rank-ordered chains in <paramref name="running"/> and the gate's gradient.
    /// </summary>
    private Tensor SharedBackward(
        ForwardContext saved,
        Tensor gradOwnOutput,
        SwiGluWeightGradients running,
        TensorScope scope
    )
    {
        SharedGateForward? gate = saved.SharedGateForward;
        if (gate is null)
            return Shared!.Backward(saved.SharedForward!, gradOwnOutput, running).GradX;
        int rows = gradOwnOutput.Rows;
        Tensor gradGateLogit = scope.Rent(DType.Float32, rows, 1);
        _kernels.Dispatch.Rows.RowDots(
            new RowPairs(saved.SharedForward!.Output, gate.Identity, gradOwnOutput, 0, 1),
            gradGateLogit.Reshape(rows),
            0
        );
        _kernels.Router.ScoreBackward(ScoreFunction.Sigmoid, gate.Gate, gradGateLogit, gradGateLogit);
        Tensor gradShared = scope.Rent(DType.Float32, rows, Args.Dim);
        _kernels.Dispatch.Rows.GatherRows(gradOwnOutput, 0, gate.Identity, gate.Gate.Reshape(rows), gradShared);
        Tensor gradX = Shared!.Backward(saved.SharedForward, gradShared, running).GradX;
        _kernels.Gemm.MatMulTransposeA(
            gradGateLogit,
            saved.OwnX,
            GradOf(MoeLayerCheckpoint.SharedGate),
            new GemmShape(1, Args.Dim, rows),
            accumulate: true
        );
        _kernels.Gemm.MatMul(gradGateLogit, SharedGate!, gradX, new GemmShape(rows, Args.Dim, 1), accumulate: true);
        return gradX;
    }

    private Tensor GradOf(string name)
    {
        foreach (Parameter p in Parameters)
        {
            if (p.Name == name)
                return p.Grad;
        }
        throw new InvalidOperationException($"no parameter {name}");
    }

    /// <summary>
    /// Rows <c>[start, start + rows)</c> of <paramref name="t"/>: <paramref name="t"/> itself when that is all of it,
    /// else
    /// a copy rented from <paramref name="scope"/>.
    /// </summary>
    private Tensor SliceRows(Tensor t, int start, int rows, TensorScope scope)
    {
        if (start == 0 && rows == t.Rows)
            return t;
        Tensor slice = scope.Rent(t.DType, rows, t.RowLength);
        _kernels.Dispatch.Rows.CopyRows(t, start, slice, 0, rows);
        return slice;
    }

    private static void AdoptAll(TensorScope scope, params Tensor[] tensors)
    {
        foreach (Tensor t in tensors)
            scope.Adopt(t);
    }

    /// <summary>
    /// Hands the last forward's working tensors back (<see cref="Backward"/> is not possible afterwards) and the
    /// weights and gradients to the layer kernels' allocator (on the host <see cref="ManagedTensorAllocator"/>, which
    /// recycles only what it rented: weights handed in are left to the GC). The layer cannot be used after it; the
    /// dispatcher, the process groups and the device stay with their owners.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        EndForwardScope();
        _saved = null;
        _balancer?.Dispose();
        Experts.ReleaseCopies();
        foreach (Parameter p in Parameters)
        {
            _kernels.Allocator.Return(p.Value);
            if (p.AllocatedGrad is { } grad)
                _kernels.Allocator.Return(grad);
        }
    }

    // Gradients are allocated at the first backward: a layer that only runs forward holds just its weights.
    private Parameter NewParameter(string name, Tensor value) =>
        new(name, value, () => _kernels.RentZeros(DType.Float32, value.ShapeArray()));

    /// <summary>
    /// Ends the previous forward's scope: its working tensors (routing, routed rows, expert outputs) go back to the
    /// layer kernels' allocator (on the host <see cref="ManagedTensorAllocator"/>, which recycles those from its
    /// pool for the next step) and the dispatch metadata, which nothing outside the layer holds, to the
    /// dispatcher's.
    /// </summary>
    private void EndForwardScope()
    {
        if (_saved is not null)
        {
            Dispatcher.Release(_saved.Metadata);
            // The routing may outlive the scope in a caller's hands: its device counts must not be read from storage
            // the next forward reuses.
            _saved.Routing.ReleaseCounts();
        }
        _forwardScope?.Dispose();
        _forwardScope = null;
    }

    private sealed record ForwardContext(
        Tensor X,
        Tensor OwnX,
        int OwnStart,
        RouterOutput Routing,
        DispatchMetadata Metadata,
        SwiGluForwardResult ExpertsForward,
        SwiGluForwardResult? SharedForward,
        SharedGateForward? SharedGateForward,
        CombineState CombineState,
        int[] OutputShape
    );

    /// <summary>The shared expert gate's forward: sigmoid values [T, 1], the identity row map [T] and the gated
    /// output.</summary>
    private sealed record SharedGateForward(Tensor Gate, Tensor Identity, Tensor Gated);
}
