# Follows MLflow's examples/sklearn_elasticnet_wine/train.py step by step (an ElasticNet on the
# wine data, three metrics, the model logged and loaded back); the data comes from
# scikit-learn instead of a download, and the model is not registered (no registry here).
import sys
import warnings

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.datasets import load_wine
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split


def scores(truth, guess):
    rmse = np.sqrt(mean_squared_error(truth, guess))
    return rmse, mean_absolute_error(truth, guess), r2_score(truth, guess)


warnings.filterwarnings("ignore")
np.random.seed(40)
table = load_wine(as_frame=True).frame.rename(columns={"target": "quality"})
train, test = train_test_split(table)
train_x, test_x = train.drop(["quality"], axis=1), test.drop(["quality"], axis=1)
train_y, test_y = train[["quality"]], test[["quality"]]
alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
with mlflow.start_run():
    model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
    model.fit(train_x, train_y)
    rmse, mae, r2 = scores(test_y, model.predict(test_x))
    mlflow.log_param("alpha", alpha)
    mlflow.log_param("l1_ratio", l1_ratio)
    mlflow.log_metric("rmse", rmse)
    mlflow.log_metric("r2", r2)
    mlflow.log_metric("mae", mae)
    info = mlflow.sklearn.log_model(model, name="model")  # the example registers it on a server
reloaded = mlflow.sklearn.load_model(info.model_uri)
EXTRA = {"same_predictions": bool((reloaded.predict(test_x) == model.predict(test_x)).all())}
