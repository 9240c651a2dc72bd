using System.Globalization;
using MoeSharp.Cli.Output;
using MoeSharp.Collectives;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cli.Training;

/// <summary>
/// <c>moe train --save DIR</c> / <c>--load DIR</c>: everything a resumed run needs to take the same steps as an
/// uninterrupted one, bitwise on the host (docs/config.md):
/// <list type="bullet">
/// <item><c>layer.safetensors</c>: the layer's golden-named weights and load-balancing bias (all E experts;
/// <see cref="MoeLayerCheckpoint"/>, so <c>moe</c> and the library can load it as a plain layer checkpoint);</item>
/// <item><c>trainer.safetensors</c>: the head's weight, both optimizers' AdamW moments (experts gathered to
/// [E, …] like the weights) and, in its metadata, the step, the optimizers' step counts and the options the
/// run must share (<see cref="TrainOptions.Identity"/>).</item>
/// </list>
/// The data and the teacher are functions of the seed and the step, so the step is the whole data/RNG state.
/// Both files carry the step; a directory whose files disagree (a save cut short) is refused. A checkpoint holds
/// every expert, so it can be resumed on another world size or layout.
/// </summary>
internal static class TrainCheckpoint
{
    /// <summary>The layer's weights.</summary>
    public const string LayerFile = "layer.safetensors";

    /// <summary>Head, optimizer moments, step and identity.</summary>
    public const string TrainerFile = "trainer.safetensors";

    private const string Format = "moesharp-train-checkpoint/1";
    private const string HeadWeight = "head.weight";
    private const string LayerMoments = "layer.";
    private const string HeadMoments = "head.";
    private static readonly HashSet<string> ExpertParameters =
    [
        MoeLayerCheckpoint.ExpertsW1,
        MoeLayerCheckpoint.ExpertsW2,
        MoeLayerCheckpoint.ExpertsW3,
    ];

    /// <summary>
    /// Reads the step a checkpoint directory is at and checks it against the run's options, before any work. Only the
    /// two files' headers are read, and checked against the files' lengths as a full read checks them (overlapping or
    /// missing data is refused here): the step and the options are metadata, and the tensors, the size of the whole
    /// checkpoint, are left to the ranks' <see cref="Load"/>.
    /// </summary>
    /// <returns>The last step the checkpoint took.</returns>
    /// <exception cref="ArgumentException">
    /// A file is missing or not a checkpoint of <c>moe train</c>, the options differ from the checkpoint's (naming
    /// the option), or it is past <c>--steps</c>.
    /// </exception>
    public static int Check(string directory, TrainOptions o)
    {
        int step;
        IReadOnlyDictionary<string, string> trainer;
        try
        {
            string trainerPath = Path.Combine(directory, TrainerFile);
            string layerPath = Path.Combine(directory, LayerFile);
            trainer = Header(trainerPath).Metadata;
            step = StepOf(trainer, trainerPath);
            int layerStep = StepOf(Header(layerPath).Metadata, layerPath);
            if (layerStep != step)
            {
                throw new InvalidDataException(
                    $"{LayerFile} is at step {layerStep} but {TrainerFile} at step {step} (an interrupted save?)"
                        + LeftoverNote(directory)
                );
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--load {directory}: {ex.Message}", ex);
        }
        foreach (var (key, value) in o.Identity())
        {
            // Checkpoints from before --batch drew their batches sequentially.
            string saved = trainer.GetValueOrDefault(key) ?? (key == "batch" ? "sequential" : "(none)");
            if (saved != value)
            {
                throw new ArgumentException(
                    $"--load {directory}: the checkpoint was trained with --{key} {saved}; this run has --{key} {value}"
                );
            }
        }
        if (step >= o.Steps)
        {
            throw new ArgumentException(
                $"--steps {o.Steps}: the checkpoint in {directory} is already at step {step}; "
                    + "--steps counts all steps, resumed ones included"
            );
        }
        return step;
    }

    private static SafetensorsHeader Header(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        return SafetensorsReader.ReadHeader(stream, path);
    }

    /// <summary>
    /// Restores the state of <paramref name="directory"/> on this rank: the head, the router and the shared expert
    /// whole, and of the experts' weights and moments only this rank's, read from their place in the files.
    /// </summary>
    /// <returns>The last step the checkpoint took.</returns>
    /// <exception cref="InvalidDataException">A tensor is missing, not float32 or mis-shaped (names the
    /// file).</exception>
    public static int Load(string directory, MoeLayer layer, AdamW layerOptimizer, Parameter head, AdamW headOptimizer)
    {
        using LazySafetensorsFile trainerFile = LazySafetensorsFile.Open(Path.Combine(directory, TrainerFile));
        using LazySafetensorsFile layerFile = LazySafetensorsFile.Open(Path.Combine(directory, LayerFile));
        RankCheckpointReader trainer = ReaderFor(trainerFile, layer),
            layerState = ReaderFor(layerFile, layer);
        MoeLayerCheckpoint.LoadLocalExperts(
            layer,
            layerState.Names.Select(name =>
                KeyValuePair.Create(
                    name,
                    ExpertParameters.Contains(name) ? layerState.OwnExperts(name) : layerState.Whole(name)
                )
            ),
            layerState.Path
        );
        Tensor savedHead = trainer.Whole(HeadWeight);
        if (!savedHead.Shape.SequenceEqual(head.Value.Shape))
        {
            throw new InvalidDataException(
                $"{trainer.Path}: '{HeadWeight}' is {savedHead}; expected float32 {head.Value.ShapeString}"
            );
        }
        var layerMoments = new List<KeyValuePair<string, Tensor>>();
        var headMoments = new List<KeyValuePair<string, Tensor>>();
        foreach (string name in trainer.Names)
        {
            if (name.StartsWith(LayerMoments, StringComparison.Ordinal))
            {
                string moment = name[LayerMoments.Length..];
                layerMoments.Add(new(moment, IsExpertMoment(moment) ? trainer.OwnExperts(name) : trainer.Whole(name)));
            }
            else if (name.StartsWith(HeadMoments, StringComparison.Ordinal) && name != HeadWeight)
            {
                headMoments.Add(new(name[HeadMoments.Length..], trainer.Whole(name)));
            }
        }
        int layerSteps = IntOf(trainer.Metadata, trainer.Path, "layer_adamw_steps");
        layerOptimizer.LoadState(layerMoments, layerSteps, trainer.Path);
        int headSteps = IntOf(trainer.Metadata, trainer.Path, "head_adamw_steps");
        headOptimizer.LoadState(headMoments, headSteps, trainer.Path);
        savedHead.AsSpan<float>().CopyTo(head.Value.AsSpan<float>());
        return StepOf(trainer.Metadata, trainer.Path);
    }

    private static RankCheckpointReader ReaderFor(LazySafetensorsFile file, MoeLayer layer) =>
        new(file, layer.Args.NumExperts, layer.FirstExpert, layer.Experts.NumLocalExperts);

    /// <summary>
    /// Collective: writes this step's state to <paramref name="directory"/> from rank 0, both files together
    /// (<see cref="FileSetReplacement"/>): a save that fails leaves the previous checkpoint whole. The experts'
    /// weights and moments travel to rank 0 in blocks (<see cref="MoeLayerCheckpoint.StreamExpertStack"/>) and are
    /// written at their offsets, so no rank holds more than its own experts' state and one block.
    /// </summary>
    public static void Save(
        string directory,
        IProcessGroup world,
        TrainOptions o,
        int step,
        MoeLayer layer,
        AdamW layerOptimizer,
        Parameter head,
        AdamW headOptimizer
    )
    {
        string stepText = step.ToString(CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string>(o.Identity().ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            ["format"] = Format,
            ["step"] = stepText,
            ["layer_adamw_steps"] = layerOptimizer.StepCount.ToString(CultureInfo.InvariantCulture),
            ["head_adamw_steps"] = headOptimizer.StepCount.ToString(CultureInfo.InvariantCulture),
        };
        var layerMetadata = new Dictionary<string, string> { ["format"] = Format, ["step"] = stepText };
        // This rank's moments: of the experts' parameters its own experts' only.
        IReadOnlyList<KeyValuePair<string, Tensor>> layerMoments = layerOptimizer.MomentsStateDict(),
            headMoments = headOptimizer.MomentsStateDict();
        var trainerLayout = new List<(string Name, DType DType, long[] Shape)>
        {
            (HeadWeight, DType.Float32, Shape(head.Value, experts: null)),
        };
        foreach (var (name, moment) in layerMoments)
        {
            int? experts = IsExpertMoment(name) ? layer.Args.NumExperts : null;
            trainerLayout.Add((LayerMoments + name, DType.Float32, Shape(moment, experts)));
        }
        foreach (var (name, moment) in headMoments)
            trainerLayout.Add((HeadMoments + name, DType.Float32, Shape(moment, experts: null)));

        // Every rank makes the same collective calls in the same order; only rank 0 has writers.
        void WriteTrainer(SafetensorsStreamWriter? writer)
        {
            writer?.Write(HeadWeight, 0, head.Value.AsSpan<float>());
            foreach (var (name, moment) in layerMoments)
            {
                if (IsExpertMoment(name))
                {
                    MoeLayerCheckpoint.StreamExpertStack(
                        layer,
                        writer,
                        LayerMoments + name,
                        moment,
                        moment.Dim(1),
                        moment.Dim(2),
                        MoeLayerCheckpoint.SaveBlockBytes
                    );
                }
                else
                {
                    writer?.Write(LayerMoments + name, 0, moment.AsSpan<float>());
                }
            }
            foreach (var (name, moment) in headMoments)
                writer?.Write(HeadMoments + name, 0, moment.AsSpan<float>());
        }
        void WriteLayer(SafetensorsStreamWriter? writer) =>
            MoeLayerCheckpoint.WriteSaved(layer, writer, MoeLayerCheckpoint.SaveBlockBytes);

        if (world.Rank != 0)
        {
            WriteTrainer(null);
            WriteLayer(null);
            return;
        }
        FileSetReplacement.Replace(
            directory,
            [
                (TrainerFile, file => Stream(file, trainerLayout, metadata, WriteTrainer)),
                (LayerFile, file => Stream(file, MoeLayerCheckpoint.SaveLayout(layer), layerMetadata, WriteLayer)),
            ]
        );
    }

    private static void Stream(
        FileStream file,
        IReadOnlyList<(string Name, DType DType, long[] Shape)> layout,
        IReadOnlyDictionary<string, string> metadata,
        Action<SafetensorsStreamWriter> write
    )
    {
        using SafetensorsStreamWriter writer = SafetensorsStreamWriter.Over(file, layout, metadata);
        write(writer);
        writer.Commit();
    }

    /// <summary>A tensor's shape, with all <paramref name="experts"/> in the first dimension for an expert
    /// stack.</summary>
    private static long[] Shape(Tensor t, int? experts)
    {
        long[] shape = Array.ConvertAll(t.ShapeArray(), d => (long)d);
        if (experts is int e)
            shape[0] = e;
        return shape;
    }

    /// <summary>
    /// Where a save killed between its renames left the old files it had moved aside
    /// (<see cref="FileSetReplacement"/>'s hidden <c>.NAME.TAG.previous</c>), so they can be put back by hand.
    /// </summary>
    private static string LeftoverNote(string directory)
    {
        string[] previous = Directory
            .EnumerateFiles(directory, ".*.previous")
            .Select(Path.GetFileName)
            .Order(StringComparer.Ordinal)
            .ToArray()!;
        return previous.Length == 0 ? "" : $"; the save moved the old files aside to {string.Join(", ", previous)}";
    }

    private static bool IsExpertMoment(string name) =>
        ExpertParameters.Contains(name[(name.IndexOf('.') + 1)..])
        && name.StartsWith("exp_avg", StringComparison.Ordinal);

    /// <summary>The step in a file's metadata, once the metadata says it is a checkpoint of <c>moe train</c>.</summary>
    private static int StepOf(IReadOnlyDictionary<string, string> metadata, string file)
    {
        if (metadata.GetValueOrDefault("format") != Format)
        {
            throw new InvalidDataException(
                $"{file}: not a checkpoint of moe train (metadata 'format' is not {Format})"
            );
        }
        return IntOf(metadata, file, "step");
    }

    private static int IntOf(IReadOnlyDictionary<string, string> metadata, string file, string key) =>
        int.TryParse(metadata.GetValueOrDefault(key), NumberStyles.None, CultureInfo.InvariantCulture, out int value)
        && value >= 0
            ? value
            : throw new InvalidDataException($"{file}: metadata '{key}' is missing or not a step count");
}
