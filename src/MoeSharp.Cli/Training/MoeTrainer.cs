using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Cuda;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;
using MoeSharp.Training;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Training;

/// <summary>
/// A small regression model trained on a world of ranks (in-process or MPI): <c>pred = head · MoE(x)</c> (head: D → 1),
/// target a fixed random teacher <c>tanh(x·a)·(x·b)</c>, MSE loss, AdamW, aux-loss-free load balancing. Every
/// step's global batch (<see cref="TrainOptions.Tokens"/> rows, from the seed and the step) is split
/// into consecutive chunks, one per data-parallel group.
/// </summary>
/// <remarks>
/// Everything is layout-invariant to the bit: the layer's output and gradients are (see
/// <see cref="MoeLayer"/>), the head gradient is chained over the ranks in token order
/// (<see cref="RankOrderedAccumulation"/>), and the loss is summed in global token order from per-token
/// values placed by an exact all-reduce. So the same seed prints the same losses on any world/SP/layout.
/// </remarks>
internal static class MoeTrainer
{
    /// <summary>
    /// Trains on <see cref="TrainOptions.World"/> in-process ranks; <paramref name="report"/> is called on rank 0's
    /// thread after every step.
    /// </summary>
    /// <returns>The loss of every step.</returns>
    public static double[] Train(TrainOptions o, Action<StepReport>? report = null, TimeSpan? timeout = null)
    {
        // The ranks share one draw of the initial values: each walking the whole sequence for its slice cost the world
        // size times the draw on the same cores.
        int local = o.Experts / o.World;
        var initial = new Lazy<InitialValues>(() =>
            InitialValues.ForRanks(
                LayerArgs(o),
                o.Seed,
                [.. Enumerable.Range(0, o.World).Select(r => (r * local, local))]
            )
        );
        return InProcessWorld.Run(o.World, world => TrainRank(world, o, report, initial), timeout)[0];
    }

    /// <summary>
    /// One rank's training on any process group (in-process threads or MPI): collective, every rank of
    /// <paramref name="world"/> calls it with the same options. <paramref name="report"/> is called on rank 0 only.
    /// </summary>
    /// <param name="world">The training world; its size must be <see cref="TrainOptions.World"/>.</param>
    /// <param name="o">The options, the same on every rank.</param>
    /// <param name="report">Called on rank 0 after every step.</param>
    /// <returns>The loss of every step run (from the checkpoint's next step when resuming; the same on every
    /// rank).</returns>
    public static double[] TrainRank(IProcessGroup world, TrainOptions o, Action<StepReport>? report = null) =>
        TrainRank(world, o, report, shared: null);

    /// <summary>
    /// <see cref="TrainRank(IProcessGroup, TrainOptions, Action{StepReport}?)"/> with the initial values drawn once
    /// for all the ranks of <paramref name="world"/> (slice = rank), or by this rank alone when
    /// <paramref name="shared"/> is null.
    /// </summary>
    private static double[] TrainRank(
        IProcessGroup world,
        TrainOptions o,
        Action<StepReport>? report,
        Lazy<InitialValues>? shared
    )
    {
        ArgumentNullException.ThrowIfNull(world);
        if (world.Size != o.World)
            throw new ArgumentException(
                $"--world {o.World} but the process group has {world.Size} ranks",
                nameof(world)
            );
        MoeLayerArgs args = LayerArgs(o);
        var layout = new LayerLayout(o.World, o.Sp, o.Layout, o.Sharding);

        using DeviceRank? device = o.Compute.CreateRank(world);
        using ParallelGroups? groups =
            o.World == 1 && o.Layout == SequenceLayout.Replicated
                ? null
                : ParallelGroups.Create(device?.World ?? world, o.Sp);
        // On the host the decorators wrap the managed kernels (the synchronization around each call is a no-op there).
        ProfilingMoeKernels? dispatchProfile = o.Profile
            ? new ProfilingMoeKernels((IMoeKernels?)device?.Backend.Kernels ?? new HostMoeKernels())
            : null;
        ProfilingLayerKernels? layerProfile = o.Profile
            ? new ProfilingLayerKernels(
                (ILayerKernels?)device?.Backend.LayerKernels(o.BFloat16Products)
                    ?? new HostLayerKernels(dispatchProfile)
            )
            : null;
        MoeLayer layer = LayerWorldRunner.CreateLayer(
            args,
            o.ScoreBeforeExperts,
            layout,
            groups,
            device,
            o.BFloat16Products,
            dispatchProfile,
            layerProfile,
            collectTraffic: o.Traffic
        );
        ILayerKernels kernels = layer.Kernels;
        // Every rank gets the same initial weights and teacher from the seed, so nothing needs broadcasting; of the
        // experts it keeps only its own (the layer says which: rank r holds E / W experts from r · E / W on).
        int localExperts = layer.Experts.NumLocalExperts;
        if (layer.FirstExpert != world.Rank * localExperts)
        {
            throw new InvalidOperationException(
                $"rank {world.Rank} holds experts from {layer.FirstExpert}, not {world.Rank * localExperts}"
            );
        }
        InitialValues initial =
            shared?.Value ?? InitialValues.ForRanks(args, o.Seed, [(layer.FirstExpert, localExperts)]);
        MoeLayerCheckpoint.LoadLocalExperts(layer, initial.TakeWeights(shared is null ? 0 : world.Rank));
        float[] head0 = initial.Head,
            teacherA = initial.TeacherA,
            teacherB = initial.TeacherB;
        // The head is one host row; the layer's weights and moments stay on its device. AdamW updates every parameter
        // on its own, so two optimizers take the same steps as one.
        var head = new Parameter("head.weight", Tensor.FromArray((float[])head0.Clone(), 1, o.Dim));
        var layerOptimizer = new AdamW(layer.Parameters, o.LearningRate, weightDecay: 0f, kernels: kernels);
        var headOptimizer = new AdamW([head], o.LearningRate, weightDecay: 0f);
        IProcessGroup? collective = groups is null ? null : world;
        // A resumed run continues after the checkpoint's step; the batches are functions of the seed and the step.
        int firstStep = o.LoadFrom is { } from
            ? TrainCheckpoint.Load(from, layer, layerOptimizer, head, headOptimizer) + 1
            : 1;
        var stepLosses = new double[o.Steps - firstStep + 1];

        // On a device the batch, the teacher and the loss run there too: only vectors cross to the host each step.
        using DeviceFeed? feed = device is null ? null : new DeviceFeed(device.Backend, teacherA, teacherB, head.Value);

        for (int step = firstStep; step <= o.Steps; step++)
        {
            long started = Stopwatch.GetTimestamp();
            var tokenLoss = new double[o.Tokens];
            StepWork work;
            try
            {
                work = feed is null
                    ? HostStep(o, layout, world.Rank, step, layer, layerOptimizer, head, teacherA, teacherB, tokenLoss)
                    : DeviceStep(o, layout, world.Rank, step, layer, layerOptimizer, head, feed, tokenLoss);
            }
            catch (ArgumentException) when (Divergence.NonFiniteParameter(layer.Parameters.Append(head)) is { } name)
            {
                throw Divergence.Error(o.LearningRate, step, $"'{name}' is no longer finite");
            }
            RankOrderedAccumulation.Run(collective, [head.Grad], work.AccumulateHeadGrad);
            TimeSpan layerTime = work.LayerTime;
            TrafficReport? traffic = work.Traffic;

            collective?.AllReduceSum(tokenLoss.AsSpan());
            double loss = 0;
            foreach (double l in tokenLoss)
                loss += l;
            loss /= o.Tokens;
            // The loss is all-reduced, so every rank stops here together.
            if (!double.IsFinite(loss))
                throw Divergence.Error(o.LearningRate, step, $"the loss is {loss}");
            stepLosses[step - firstStep] = loss;

            headOptimizer.Step();
            feed?.SetHead(head.Value);
            long[] load = layer.UpdateExpertBias(o.BiasUpdateCoeff);
            IReadOnlyList<KernelTime>? kernelTimes =
                step == o.Steps && step > firstStep ? ProfileRows(dispatchProfile, layerProfile) : null;
            if (world.Rank == 0)
                report?.Invoke(
                    new StepReport(
                        step,
                        loss,
                        load,
                        layer.ExpertBias!.AsSpan<float>().ToArray(),
                        Stopwatch.GetElapsedTime(started).TotalMilliseconds,
                        layerTime.TotalMilliseconds,
                        kernelTimes
                    )
                    {
                        Traffic = traffic,
                    }
                );
            if (step == firstStep)
            {
                // The first step compiles kernels and fills the pools: profile the steady state.
                dispatchProfile?.Reset();
                layerProfile?.Reset();
            }
        }
        if (o.SaveTo is { } to)
            TrainCheckpoint.Save(to, world, o, o.Steps, layer, layerOptimizer, head, headOptimizer);
        return stepLosses;
    }

    /// <summary>What a step hands to the common tail: the layer's time, its traffic and the head's gradient.</summary>
    private readonly record struct StepWork(TimeSpan LayerTime, TrafficReport? Traffic, Action AccumulateHeadGrad);

    /// <summary>
    /// A step on the host: the batch, the forward, the head's prediction and gradients, the backward and the layer's
    /// AdamW; fills the own tokens' losses into <paramref name="tokenLoss"/>.
    /// </summary>
    private static StepWork HostStep(
        TrainOptions o,
        LayerLayout layout,
        int rank,
        int step,
        MoeLayer layer,
        AdamW layerOptimizer,
        Parameter head,
        float[] teacherA,
        float[] teacherB,
        double[] tokenLoss
    )
    {
        ILayerKernels kernels = layer.Kernels;
        Tensor all = Batch(o, step);
        var (x, groupTokens, ownGlobal) = LayerWorldRunner.RankRows(all, layout, rank);
        var (groupStart, _) = LayerWorldRunner.GroupRows(o.Tokens, layout.Groups, rank / o.Sp);
        int rowsGlobal = o.Layout == SequenceLayout.Replicated ? groupStart : ownGlobal;
        int ownOffset = ownGlobal - rowsGlobal,
            ownCount = OwnCount(o, layout, rank, groupTokens);

        long layerStarted = Stopwatch.GetTimestamp();
        Tensor y = layer.Forward(x, o.Layout == SequenceLayout.Sharded ? groupTokens : null);
        TimeSpan layerTime = Stopwatch.GetElapsedTime(layerStarted);
        // The forward's dispatch and combine: the backward passes are not recorded.
        TrafficReport? traffic = layer.Dispatcher.LastTraffic;
        int rows = y.Rows,
            d = o.Dim;

        // Row-wise: prediction, error, dL/dpred and dL/dy for every row this rank holds.
        var pred = new float[rows];
        HostGemm.MatMulTransposeB(y.AsSpan<float>(), head.Value.AsSpan<float>(), pred, rows, 1, d);
        var gradPred = new float[rows];
        float scale = 2f / o.Tokens;
        for (int i = 0; i < rows; i++)
        {
            float error = pred[i] - Teacher(all.Row<float>(rowsGlobal + i), teacherA, teacherB);
            gradPred[i] = scale * error;
            // Each token's loss is counted by the one rank that owns it.
            if (i >= ownOffset && i < ownOffset + ownCount)
                tokenLoss[rowsGlobal + i] = (double)error * error;
        }
        // From the layer's pool (it goes back there below): a fresh [rows, D] block each step faulted in its pages.
        Tensor gradY = kernels.Allocator.Rent(DType.Float32, rows, d);
        HostGemm.MatMul(gradPred, head.Value.AsSpan<float>(), gradY.AsSpan<float>(), rows, d, 1);

        layerStarted = Stopwatch.GetTimestamp();
        Tensor gradX = layer.Backward(gradY).GradX;
        layerOptimizer.Step();
        kernels.Dispatch.Device.Synchronize();
        layerTime += Stopwatch.GetElapsedTime(layerStarted);
        // The own rows are copied out before y goes back: the host allocator recycles the layer's storage.
        Tensor yOwn = LayerWorldRunner.Rows(y, ownOffset, ownCount);
        foreach (Tensor t in new[] { x, y, gradY, gradX })
            kernels.Allocator.Return(t);
        float[] gradPredOwn = gradPred.AsSpan(ownOffset, ownCount).ToArray();
        return new StepWork(
            layerTime,
            traffic,
            () =>
                HostGemm.MatMulTransposeA(
                    gradPredOwn,
                    yOwn.AsSpan<float>(),
                    head.Grad.AsSpan<float>(),
                    1,
                    d,
                    ownCount,
                    accumulate: true
                )
        );
    }

    /// <summary>
    /// A step on the rank's device: the batch drawn there (or uploaded), the teacher, the forward, the head's step
    /// (<see cref="DeviceFeed.Loss"/>), the backward and the layer's AdamW, then one copy of the own rows' errors and
    /// the head's gradient to the host. The layer's time covers the forward and the backward with its AdamW, each
    /// finished on the device.
    /// </summary>
    private static StepWork DeviceStep(
        TrainOptions o,
        LayerLayout layout,
        int rank,
        int step,
        MoeLayer layer,
        AdamW layerOptimizer,
        Parameter head,
        DeviceFeed feed,
        double[] tokenLoss
    )
    {
        ILayerKernels kernels = layer.Kernels;
        var (groupStart, groupTokens) = LayerWorldRunner.GroupRows(o.Tokens, layout.Groups, rank / o.Sp);
        SequenceShard shard = SequenceShard.For(layout.Sharding, groupTokens, layout.Sp, rank % layout.Sp);
        bool replicated = o.Layout == SequenceLayout.Replicated;
        int ownGlobal = groupStart + shard.Start,
            rowsGlobal = replicated ? groupStart : ownGlobal,
            rows = replicated ? groupTokens : shard.RealRows,
            ownOffset = ownGlobal - rowsGlobal,
            ownCount = OwnCount(o, layout, rank, groupTokens);

        Tensor x =
            o.BatchOrDefault == BatchSource.Counter
                ? feed.CounterBatch(o.Seed, step, rowsGlobal, rows, o.Dim)
                : feed.Upload(LayerWorldRunner.RankRows(Batch(o, step), layout, rank).X);
        Tensor target = feed.Teacher(x);

        // Finished before the layer's clock starts (and the head's step before the backward's), so the layer's time is
        // the layer's alone; each wait costs a launch gap of microseconds.
        kernels.Dispatch.Device.Synchronize();
        long layerStarted = Stopwatch.GetTimestamp();
        Tensor y = layer.Forward(x, o.Layout == SequenceLayout.Sharded ? groupTokens : null);
        kernels.Dispatch.Device.Synchronize();
        TimeSpan layerTime = Stopwatch.GetElapsedTime(layerStarted);
        TrafficReport? traffic = layer.Dispatcher.LastTraffic;

        Tensor gradY = feed.Loss(y, target, 2f / o.Tokens, ownOffset, ownCount);
        kernels.Dispatch.Device.Synchronize();
        layerStarted = Stopwatch.GetTimestamp();
        Tensor gradX = layer.Backward(gradY).GradX;
        layerOptimizer.Step();
        kernels.Dispatch.Device.Synchronize();
        layerTime += Stopwatch.GetElapsedTime(layerStarted);
        kernels.Allocator.Return(y);
        kernels.Allocator.Return(gradX);

        var (errors, headGrad) = feed.EndStep();
        for (int i = 0; i < ownCount; i++)
            tokenLoss[ownGlobal + i] = (double)errors[i] * errors[i];
        return new StepWork(
            layerTime,
            traffic,
            () =>
            {
                Span<float> grad = head.Grad.AsSpan<float>();
                for (int j = 0; j < grad.Length; j++)
                    grad[j] += headGrad[j];
            }
        );
    }

    /// <summary>The profilers' totals, slowest first; null when not profiling.</summary>
    private static List<KernelTime>? ProfileRows(ProfilingMoeKernels? dispatch, ProfilingLayerKernels? layer)
    {
        if (dispatch is null || layer is null)
            return null;
        return dispatch
            .Totals.Select(t => new KernelTime("dispatch " + t.Key, t.Value.Seconds, t.Value.Calls))
            .Concat(layer.Totals.Select(t => new KernelTime("layer " + t.Key, t.Value.Seconds, t.Value.Calls)))
            .OrderByDescending(t => t.Seconds)
            .ToList();
    }

    /// <summary>Tokens this rank owns (its SP shard of its group's chunk).</summary>
    private static int OwnCount(TrainOptions o, LayerLayout layout, int rank, int groupTokens) =>
        SequenceShard.For(o.Sharding, groupTokens, layout.Sp, rank % layout.Sp).RealRows;

    /// <summary>The global batch of a step: [N, D] uniform in [-1, 1), the same on every rank.</summary>
    private static Tensor Batch(TrainOptions o, int step)
    {
        if (o.BatchOrDefault == BatchSource.Counter)
        {
            var values = new float[o.Tokens * o.Dim];
            CounterUniform.Fill(CounterUniform.StreamKey(o.Seed, step), 0, values);
            return Tensor.FromArray(values, o.Tokens, o.Dim);
        }
        // Not HashCode.Combine: it is randomized per process, and the batch must be the same on every run.
        var random = new Random(unchecked((o.Seed * 1_000_003) + step));
        return Tensor.FromArray(InitialValues.Uniform(random, o.Tokens * o.Dim, 1.0), o.Tokens, o.Dim);
    }

    private static float Teacher(ReadOnlySpan<float> x, float[] a, float[] b)
    {
        double u = 0,
            v = 0;
        for (int j = 0; j < x.Length; j++)
        {
            u += x[j] * a[j];
            v += x[j] * b[j];
        }
        return (float)(Math.Tanh(u) * v);
    }

    private static MoeLayerArgs LayerArgs(TrainOptions o) =>
        new(o.Dim, o.Hidden, o.Experts, o.TopK)
        {
            SharedHidden = o.SharedHidden,
            LoadBalancing = true,
            ScoreFunc = o.ScoreFunc,
            RouteNorm = o.RouteNorm,
            RouteScale = o.RouteScale,
            NumExpertGroups = o.ExpertGroups,
            NumLimitedGroups = o.LimitedGroups,
        };
}
