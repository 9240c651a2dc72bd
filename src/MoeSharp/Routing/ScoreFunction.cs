namespace MoeSharp.Routing;

/// <summary>How router logits become expert scores (torchtitan's <c>score_func</c>).</summary>
public enum ScoreFunction
{
    /// <summary>Softmax over the E experts of each token, in float32.</summary>
    Softmax,

    /// <summary>Element-wise logistic sigmoid.</summary>
    Sigmoid,
}
